// The experiments end to end on a small subset (512 training / 256 test images): each writes its
// pictures, settings.json, results.json and results.md, and those hold the numbers the function
// returned and the command printed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compareRegularization, fewerFilters, sweepKernelSizes } from '../src/index';
import { buildProgram } from '../src/cli/main';
import type { ResultsFile, ResultsTable } from '../src/experiments/results';
import { fashion } from './fixtures';
import { rejected } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-experiments-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SMALL = { limit: 512, testLimit: 256, epochs: 1 };

/** The first Markdown table of a file whose header row starts with `firstHeader`. */
function markdownTable(file: string, firstHeader: string): ResultsTable {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${firstHeader} |`));
  expect(start).toBeGreaterThanOrEqual(0);
  const cells = (l: string) => l.slice(2, -2).split(' | ').map((c) => c.replace(/\\\|/g, '|'));
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i].startsWith('|'); i++) rows.push(cells(lines[i]));
  return { headers: cells(lines[start]), rows };
}

function readResults(dir: string): ResultsFile {
  return JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ResultsFile;
}

/** The rows of the cli-table3 table printed on stdout (header row first). */
function printedTable(stdout: string): string[][] {
  // eslint-disable-next-line no-control-regex
  const plain = stdout.replace(/\u001b\[[0-9;]*m/g, '');
  return plain.split('\n').filter((l) => l.startsWith('│')).map((l) => l.split('│').slice(1, -1).map((c) => c.trim()));
}

async function runCli(args: string[]): Promise<string> {
  let out = '';
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await buildProgram().exitOverride().parseAsync(['node', 'convscope', ...args]);
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function expectFiles(dir: string, files: string[]): void {
  for (const f of files) {
    const file = path.join(dir, f);
    expect(fs.existsSync(file)).toBe(true);
    if (f.endsWith('.png')) expect(fs.readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
  }
}

function expectSettings(dir: string, expected: Record<string, unknown>): void {
  const settings = JSON.parse(fs.readFileSync(path.join(dir, 'settings.json'), 'utf8'));
  expect(settings).toMatchObject({ trainImages: 512, testImages: 256, epochs: 1, seed: 42, dataset: 'fashion-mnist', ...expected });
  expect(settings.machine.cores).toBeGreaterThan(0);
}

/** results.md, results.json and the printed table agree cell for cell. */
function expectSameTables(dir: string, printed: string | undefined): ResultsFile {
  const results = readResults(dir);
  expect(markdownTable(path.join(dir, 'results.md'), results.table.headers[0])).toEqual(results.table);
  if (printed !== undefined) expect(printedTable(printed)).toEqual([results.table.headers, ...results.table.rows]);
  return results;
}

describe('sweepKernelSizes / convscope sweep-kernel', () => {
  test('trains each kernel size and records accuracy, parameters and time where it says', async () => {
    const outDir = path.join(tmp, 'sweep');
    const lines: string[] = [];
    const r = await sweepKernelSizes({ dataset: fashion(), sizes: [28, 3], ...SMALL, outDir, log: (l) => lines.push(l) });
    expect(r.rows.map((row) => row.kernelSize)).toEqual([3, 28]);
    expect(lines).toHaveLength(2);
    // conv1 has filters * (k*k + 1) values; the rest of the network does not change with k.
    expect(r.rows[0].conv1Parameters).toBe(32 * 10);
    expect(r.rows[1].conv1Parameters).toBe(32 * (28 * 28 + 1));
    expect(r.rows[1].parameters - r.rows[0].parameters).toBe(32 * (28 * 28 - 9));
    for (const row of r.rows) {
      expect(row.testAccuracy).toBeGreaterThan(0.2); // chance is 0.1
      expect(row.secondsPerEpoch).toBeGreaterThan(0);
    }
    expectFiles(outDir, ['conv1-k3.png', 'conv1-k28.png', 'accuracy-vs-kernel-size.png', 'settings.json', 'results.json', 'results.md']);
    expectSettings(outDir, { sizes: [3, 28], mode: 'script' });
    const results = expectSameTables(outDir, undefined);
    expect(results.data).toEqual({ rows: r.rows });
    expect(results.table.rows.map((row) => [row[0], row[1], row[3], row[5]])).toEqual(
      r.rows.map((row) => [`${row.kernelSize}x${row.kernelSize}`, pct(row.testAccuracy), String(row.parameters), row.secondsPerEpoch.toFixed(2)]));
  });

  test('the command prints the table it writes', async () => {
    const outDir = path.join(tmp, 'sweep-cli');
    const printed = await runCli(['sweep-kernel', '--sizes', '3,5', '--limit', '512', '--test-limit', '256', '--out', outDir]);
    const results = expectSameTables(outDir, printed);
    expect(results.table.rows.map((row) => row[0])).toEqual(['3x3', '5x5']);
    expectFiles(outDir, ['conv1-k3.png', 'conv1-k5.png', 'accuracy-vs-kernel-size.png']);
    expect(printed).toContain(path.join(outDir, 'results.md'));
  });

  test('bad options fail before any training, naming the option', async () => {
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), sizes: [] }))).message).toMatch(/sizes/);
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), sizes: [3, 3] }))).name).toBe('RangeError');
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), sizes: [57] }))).message).toMatch(/sizes\[0\]/);
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), limit: 0 }))).message).toMatch(/limit/);
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), limit: 'some' as never }))).name).toBe('TypeError');
    expect((await rejected(sweepKernelSizes({ dataset: fashion(), epoch: 2 } as never))).message).toMatch(/Unknown option "epoch"/);
  });
});

describe('fewerFilters / convscope fewer-filters', () => {
  test('prunes the trained network, fine-tunes it, trains small ones from scratch and writes the table', async () => {
    const outDir = path.join(tmp, 'fewer');
    const r = await fewerFilters({ dataset: fashion(), counts: [2, 4], ...SMALL, outDir });
    expect(r.full.filters).toBe(32);
    expect(r.pruned.map((p) => p.keep)).toEqual([2, 4]);
    expect(r.scratch.map((s) => s.filters)).toEqual([2, 4]);
    for (const p of r.pruned) {
      expect(p.kept).toHaveLength(p.keep);
      expect(p.fineTunedAccuracy).toBeGreaterThan(0.2);
      expect(p.parameters).toBe(r.scratch.find((s) => s.filters === p.keep)!.parameters);
    }
    expectFiles(outDir, ['accuracy-vs-filters.png', 'conv1-full.png', 'kept-k2.png', 'kept-k4.png', 'settings.json', 'results.md']);
    expectSettings(outDir, { counts: [2, 4], keep: [2, 4], fineTuneEpochs: 1 });
    const results = expectSameTables(outDir, undefined);
    expect(results.data).toEqual({ full: r.full, pruned: r.pruned, scratch: r.scratch, answer: r.answer });
    expect(results.table.rows).toEqual(r.pruned.map((p, i) => [String(p.keep), String(p.parameters), pct(r.scratch[i].testAccuracy),
      pct(p.prunedAccuracy), pct(p.fineTunedAccuracy!), r.scratch[i].secondsPerEpoch.toFixed(2)]));
    expect(results.notes.join(' ')).toContain(pct(r.full.testAccuracy));
  });

  test('the command prunes a given checkpoint and prints the table it writes', async () => {
    const { trainCnn } = await import('../src/index');
    const trained = await trainCnn({ dataset: fashion(), ...SMALL, limit: 256, mode: 'script' });
    const checkpoint = path.join(tmp, 'full.pt');
    trained.model.save(checkpoint);
    trained.model.dispose();
    const outDir = path.join(tmp, 'fewer-cli');
    const printed = await runCli(['fewer-filters', '--checkpoint', checkpoint, '--counts', '2', '--keep', '3', '--fine-tune-epochs', '0',
      '--limit', '512', '--test-limit', '256', '--out', outDir]);
    const results = expectSameTables(outDir, printed);
    expect(results.table.rows.map((row) => row[0])).toEqual(['2', '3']);
    // Without fine-tuning that column stays empty.
    expect(results.table.rows[1][4]).toBe('-');
    expect((results.data as { full: { source: string } }).full.source).toBe(checkpoint);
    expect(printed).toMatch(/Fewest conv1 filters within 1 percentage point/);
  });

  test('asking to keep more filters than the network has is a RangeError naming keep', async () => {
    const checkpoint = path.join(tmp, 'full.pt');
    const err = await rejected(fewerFilters({ dataset: fashion(), checkpoint, counts: [2], keep: [64], ...SMALL, outDir: path.join(tmp, 'x') }));
    expect(err.name).toBe('RangeError');
    expect(err.message).toMatch(/keep\[0\]/);
  });
});

describe('compareRegularization / convscope regularization', () => {
  test('trains without penalty, with L2 and with L1 and measures sparsity and smoothness', async () => {
    const outDir = path.join(tmp, 'reg');
    const r = await compareRegularization({ dataset: fashion(), l1: 1e-3, l2: 1e-2, ...SMALL, outDir });
    expect(r.rows.map((row) => [row.penalty, row.strength])).toEqual([['none', 0], ['L2', 1e-2], ['L1', 1e-3]]);
    for (const row of r.rows) {
      expect(row.stats.conv1NearZero).toBeGreaterThanOrEqual(0);
      expect(row.stats.conv1NearZero).toBeLessThanOrEqual(1);
      expect(row.stats.conv1TotalVariation).toBeGreaterThan(0);
    }
    // L1 on every weight pulls the mean |w| of the network's weights down.
    expect(r.rows[2].stats.allNearZero).toBeGreaterThan(r.rows[0].stats.allNearZero);
    expectFiles(outDir, ['conv1-none.png', 'conv1-l2.png', 'conv1-l1.png', 'conv1-weight-histogram.png', 'settings.json']);
    expectSettings(outDir, { l1: 1e-3, l2: 1e-2, zeroThreshold: 0.01 });
    const results = expectSameTables(outDir, undefined);
    expect(results.data).toEqual({ rows: r.rows });
    expect(results.table.rows.map((row) => [row[2], row[6], row[8]])).toEqual(
      r.rows.map((row) => [pct(row.testAccuracy), pct(row.stats.conv1NearZero), row.stats.conv1TotalVariation.toFixed(3)]));
    // The three mosaics sit side by side in one Markdown table.
    expect(fs.readFileSync(path.join(outDir, 'results.md'), 'utf8')).toMatch(/\| !\[.*\]\(conv1-none\.png\) \| !\[.*\]\(conv1-l2\.png\) \| !\[.*\]\(conv1-l1\.png\) \|/);
  });

  test('the command prints the table it writes', async () => {
    const outDir = path.join(tmp, 'reg-cli');
    const printed = await runCli(['regularization', '--l1', '1e-3', '--l2', '1e-2', '--limit', '512', '--test-limit', '256', '--out', outDir]);
    const results = expectSameTables(outDir, printed);
    expect(results.table.rows.map((row) => row[0])).toEqual(['none', 'L2', 'L1']);
  });

  test('a zero or negative penalty is a RangeError naming it', async () => {
    expect((await rejected(compareRegularization({ dataset: fashion(), l1: 0 }))).message).toMatch(/l1/);
    expect((await rejected(compareRegularization({ dataset: fashion(), l2: -1 }))).message).toMatch(/l2/);
  });
});
