// The probing commands beyond explain (`convscope visualize`, ...): the files they write hold what
// the library functions compute, the pictures are the mosaics of those numbers, and bad flags are
// clear errors. Runs the commands in-process (buildProgram) on a small checkpoint.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, loadModel, maximize } from '../src/index';
import { datasetExamples } from '../src/probe/dataset-examples';
import { attributionSummary } from '../src/probe/summary';
import { fashion } from './fixtures';
import type { CnnSpec } from '../src/index';
import { buildProgram } from '../src/cli/main';
import { parseUnits } from '../src/cli/probe-commands';
import { decodeNpy } from '../src/formats/npy';
import { layoutFilterMosaic } from '../src/viz/mosaic';
import { decodePng } from './png-pixels';

const spec: CnnSpec = { conv: [{ filters: 4, kernelSize: 5, padding: 'same', pool: true }, { filters: 6, kernelSize: 3, padding: 'same', pool: true }], dense: [16], dropout: 0 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-probe-cli-'));
const checkpoint = path.join(tmp, 'model.pt');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  const model = createModel(spec, { seed: 7 });
  model.save(checkpoint);
  model.dispose();
});

/** Runs `convscope <command> <checkpoint> ...args` in this process; returns what it printed. */
async function run(command: string, ...args: string[]): Promise<string> {
  const printed: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => { printed.push(String(chunk)); return true; });
  try {
    const program = buildProgram().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await program.parseAsync(['node', 'convscope', command, checkpoint, ...args]);
  } finally {
    write.mockRestore();
  }
  return printed.join('');
}

describe('convscope visualize', () => {
  test('channels 1:4 of conv2: the .npy holds maximize()\'s images, visualize.json its objective, the mosaic shows them', async () => {
    const out = path.join(tmp, 'viz');
    const printed = await run('visualize', '--layer', 'conv2', '--channels', '1:4', '--steps', '6', '--seed', '3', '--out', out);
    expect(printed).toMatch(/objective rose for \d of 3 \(conv2 channel means\)/);
    const npy = decodeNpy(fs.readFileSync(path.join(out, 'visualisations.npy')));
    expect(npy.descr).toBe('<f4');
    expect(npy.shape).toEqual([3, 28, 28]);
    const model = loadModel(checkpoint);
    const direct = await maximize(model, { layer: 'conv2', channel: [1, 2, 3] }, { steps: 6, seed: 3 });
    model.dispose();
    expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(direct.images));
    const json = JSON.parse(fs.readFileSync(path.join(out, 'visualize.json'), 'utf8'));
    expect(json).toMatchObject({ layer: 'conv2', units: [1, 2, 3], settings: { steps: 6, seed: 3, optimizer: 'adam' }, shape: [3, 28, 28] });
    expect(json.final).toEqual(Array.from(direct.final));
    expect(json.trace).toHaveLength(3);
    expect(json.trace[0]).toHaveLength(6);
    const png = decodePng(fs.readFileSync(path.join(out, 'mosaic.png')));
    const layout = layoutFilterMosaic([3, 1, 28, 28], { normalize: 'filter', title: 'conv2 channel 1-3 (row-major)', colormap: 'gray' });
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    // Each tile is the image stretched to its own range: its darkest pixel black, its brightest white.
    const tile = layout.tiles[0];
    const values: number[] = [];
    for (let y = tile.y; y < tile.y + tile.h; ++y) for (let x = tile.x; x < tile.x + tile.w; ++x) values.push(png.at(x, y)[0]);
    expect(Math.min(...values)).toBe(0);
    expect(Math.max(...values)).toBe(255);
  });

  test('classes by list', async () => {
    const out = path.join(tmp, 'viz-classes');
    const printed = await run('visualize', '--classes', '2,5', '--steps', '4', '--out', out);
    expect(printed).toMatch(/\(class logits\)/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'visualize.json'), 'utf8'))).toMatchObject({ layer: null, units: [2, 5] });
  });

  test.each([
    [['--layer', 'conv9'], /^expected one of conv1, conv1.act, conv1.pool, conv2, conv2.act, conv2.pool, flatten, fc1, fc1.act, fc2 for --layer but received "conv9"$/],
    [['--layer', 'conv1', '--classes', '0:2'], /^expected either --layer <name> \(with --channels\) or --classes <from:to>, not both and not neither$/],
    [[], /^expected either --layer/],
    [['--layer', 'conv1', '--channels', '9:12'], /^expected a non-empty slice of the 4 units for --channels but "9:12" selects none$/],
    [['--layer', 'conv1', '--channels', '7'], /^Expected integer in \[0, 3\] for objective.channel\[0\] but received 7 of type number$/],
    [['--classes', 'a-b'], /^expected from:to \(a Python slice such as 0:16\), an index or a list such as 1,4,7 for --classes but received "a-b"$/],
    [['--classes', '0', '--steps', '0'], /^Expected integer in \[1, 65536\] for steps but received 0 of type number$/],
  ])('bad flags %j: a clear error', async (args, message) => {
    const err = await run('visualize', ...args).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
  });

  test('parseUnits: slices, an index, lists', () => {
    expect(parseUnits('0:3', 10, '--x')).toEqual([0, 1, 2]);
    expect(parseUnits('-2:', 10, '--x')).toEqual([8, 9]);
    expect(parseUnits('4', 10, '--x')).toEqual([4]);
    expect(parseUnits('1, 4,7', 10, '--x')).toEqual([1, 4, 7]);
  });
});

describe('convscope examples', () => {
  test('conv2.act channels 0:3 over test images 100:160: examples.json holds datasetExamples() with split indices; both mosaics drawn', async () => {
    const out = path.join(tmp, 'examples');
    const printed = await run('examples', '--layer', 'conv2.act', '--channels', '0:3', '--top', '4', '--images', '100:160', '--chunk-size', '16', '--out', out);
    expect(printed).toContain(path.join(out, 'examples.png'));
    const model = loadModel(checkpoint);
    const direct = await datasetExamples(model, fashion().test.images.subarray(100 * 784, 160 * 784), { layer: 'conv2.act', channels: [0, 1, 2], top: 4 });
    model.dispose();
    const json = JSON.parse(fs.readFileSync(path.join(out, 'examples.json'), 'utf8'));
    expect(json).toMatchObject({ layer: 'conv2.act', split: 'test', images: '100:160', searched: 60, field: direct.field });
    expect(json.channels.map((c: { indices: number[] }) => c.indices)).toEqual(direct.examples.map((l) => l.map((e) => 100 + e.index)));
    expect(json.channels[0].values).toEqual(direct.examples[0].map((e) => e.value));
    const field = direct.field!;
    const examples = decodePng(fs.readFileSync(path.join(out, 'examples.png')));
    const crops = decodePng(fs.readFileSync(path.join(out, 'crops.png')));
    const wholeLayout = layoutFilterMosaic([12, 1, 28, 28], { cols: 4, title: 'conv2.act channel 0-2: top 4 images per row', colormap: 'gray' });
    const cropLayout = layoutFilterMosaic([12, 1, field.size[0], field.size[1]], { cols: 4, title: `conv2.act: receptive fields (${field.size[0]}x${field.size[1]})`, colormap: 'gray' });
    expect([examples.width, examples.height]).toEqual([wholeLayout.width, wholeLayout.height]);
    expect([crops.width, crops.height]).toEqual([cropLayout.width, cropLayout.height]);
  });

  test.each([
    [['--layer', 'conv9'], /^expected one of conv1, .* for --layer but received "conv9"$/],
    [['--layer', 'conv1', '--top', '0'], /^Expected integer in \[1, \d+\] for top but received 0/],
    [['--layer', 'conv1', '--images', '5:5'], /^expected a non-empty slice of the 10000 images for --images but "5:5" selects none$/],
  ])('bad flags %j: a clear error', async (args, message) => {
    const err = await run('examples', ...args).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
  });
});

describe('convscope embeddings', () => {
  test('test images 10:30: a projector folder whose metadata names the split indices and whose config names the files', async () => {
    const out = path.join(tmp, 'embeddings');
    const printed = await run('embeddings', '--images', '10:30', '--out', out);
    expect(printed).toMatch(/20 vectors of 16 values \(fc1.act\); view them with: tensorboard --logdir /);
    for (const file of ['tensors.tsv', 'metadata.tsv', 'sprite.png', 'projector_config.pbtxt']) expect(fs.existsSync(path.join(out, file))).toBe(true);
    const meta = fs.readFileSync(path.join(out, 'metadata.tsv'), 'utf8').trimEnd().split('\n');
    expect(meta).toHaveLength(21);
    expect(meta[1].split('\t')[0]).toBe(fashion().classNames[fashion().test.labels[10]]);
    expect(meta[20].split('\t')[3]).toBe('29');
    expect(fs.readFileSync(path.join(out, 'projector_config.pbtxt'), 'utf8')).toMatch(/tensor_shape: 20\n {2}tensor_shape: 16\n/);
  });

  test('an unknown layer: a clear error', async () => {
    const err = await run('embeddings', '--layer', 'fc7', '--images', '0:4').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^Expected one of conv1, .* for layer but received "fc7" of type string$/);
  });
});

describe('convscope explain --summary', () => {
  test('saliency over test images 0:30: per-class.npy holds attributionSummary()\'s means, summary.json the confusion matrix', async () => {
    const out = path.join(tmp, 'summary');
    const printed = await run('explain', '--method', 'saliency', '--images', '0:30', '--summary', '--out', out);
    for (const file of ['per-class.npy', 'per-cell.npy', 'classes.png', 'confusion.png', 'summary.json']) expect(printed).toContain(path.join(out, file));
    const model = loadModel(checkpoint);
    const direct = await attributionSummary(model, fashion().test.images.subarray(0, 30 * 784), fashion().test.labels.subarray(0, 30), { method: 'saliency' });
    model.dispose();
    expect(Array.from(decodeNpy(fs.readFileSync(path.join(out, 'per-class.npy'))).data as Float32Array)).toEqual(Array.from(direct.perClass));
    const json = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(json).toMatchObject({ method: 'saliency', images: '0:30', split: 'test' });
    expect(json.confusion.flat()).toEqual(Array.from(direct.cellCounts));
  });

  test('--summary with --check: a clear error', async () => {
    const err = await run('explain', '--method', 'saliency', '--summary', '--check').catch((e: Error) => e);
    expect((err as Error).message).toBe('expected --check or --summary, not both: --check checks per-image maps, which --summary does not keep');
  });
});
