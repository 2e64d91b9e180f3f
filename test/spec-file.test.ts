// `convscope train --spec spec.json`: a CnnSpec from a JSON file, unknown keys refused with their path,
// errors naming the file, before any data is read or any model is built.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { readSpecFile } from '../src/index';
import { expectError } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-spec-file-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

function specFile(name: string, contents: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof contents === 'string' ? contents : JSON.stringify(contents));
  return file;
}

const wide = { conv: [{ filters: 16, kernelSize: 3, pool: true }, { filters: 32, kernelSize: 3, pool: true }], dense: [32], dropout: 0, inputChannels: 3 };

describe('readSpecFile', () => {
  test('reads a spec as written, channels included', () => {
    expect(readSpecFile(specFile('wide.json', wide))).toEqual(wide);
  });

  test.each([
    ['an unknown key in a conv layer, with its path', { ...wide, conv: [wide.conv[0], { filters: 8, kernelsize: 3 }] }, /: has an unknown key conv\[1\]\.kernelsize \(expected one of filters, kernelSize, /],
    ['an unknown top-level key', { ...wide, layers: [] }, /: has an unknown key layers \(expected one of conv, dense, /],
    ['a bad value, as planModel names it', { ...wide, inputChannels: 0 }, /: holds an invalid spec \(Expected integer in \[1, 64\] for spec\.inputChannels but received 0/],
    ['not JSON', '{ conv: [', /: is not valid JSON/],
    ['not an object', '[1, 2]', /: does not hold a JSON object/],
  ])('refuses %s, naming the file', (_what, contents, message) => {
    const file = specFile('bad.json', contents);
    expectError(() => readSpecFile(file), 'SpecFileError', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}${message.source}`));
  });

  test('a missing file is named', () => {
    expectError(() => readSpecFile(path.join(tmp, 'none.json')), 'SpecFileError', /none\.json: no such spec file$/);
  });
});

describe('convscope train --spec', () => {
  test('an unknown key stops the run before any data is read, with the key\'s path, and leaves no run folder', () => {
    const file = specFile('typo.json', { ...wide, conv: [wide.conv[0], { filters: 8, kernelsize: 3 }] });
    const runs = path.join(tmp, 'runs');
    const run = spawnSync(process.execPath, [cli, 'train', '--spec', file, '--dataset', 'mnist', '--data-dir', path.join(tmp, 'no-data'), '--runs', runs],
      { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`convscope: ${file}: has an unknown key conv[1].kernelsize (expected one of filters, kernelSize, stride, padding, activation, pool, dropout)\n`);
    expect(fs.existsSync(runs) ? fs.readdirSync(runs) : []).toEqual([]);
  });
});
