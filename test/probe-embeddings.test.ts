// embeddings() and the projector folder: the vectors are the penultimate layer's activations (as
// the layer's feature maps give them), the predictions predict()'s, eager = script, nothing leaked;
// the folder's files have the formats TensorBoard's projector reads, and (with the project's
// Python and tensorboard) the projector plugin itself finds the embedding, reads the tensor, the
// metadata and the sprite.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createModel, defaultSpec } from '../src/index';
import { native } from '../src/core/native';
import type { CnnModel } from '../src/nn/model';
import { embeddings, penultimateLayer, spriteGrid, writeProjector } from '../src/probe/embeddings';
import { ProbeRunner } from '../src/probe/runner';
import { fashion, FASHION_INPUT_NORM } from './fixtures';
import { PYTHON, testWithPython, settledLiveTensors } from './helpers';
import { decodePng } from './png-pixels';

const N = 784;
const COUNT = 40;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-embeddings-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const withTensorboard = testWithPython(['tensorboard', 'google.protobuf']);

let eager: CnnModel;
let script: CnnModel;
const images = () => fashion().test.images.subarray(0, COUNT * N);
const labels = () => fashion().test.labels.subarray(0, COUNT);
beforeAll(() => {
  eager = createModel(defaultSpec(), { seed: 13, inputNorm: FASHION_INPUT_NORM });
  script = eager.toScript();
});
afterAll(() => { eager?.dispose(); script?.dispose(); });

describe('embeddings()', () => {
  test('the penultimate layer is what the last dense layer takes, dropout skipped', () => {
    expect(penultimateLayer(eager)).toBe('fc1.act');
    const flat = createModel({ conv: [{ filters: 2, kernelSize: 3 }], dense: [], dropout: 0 });
    expect(penultimateLayer(flat)).toBe('flatten');
    flat.dispose();
  });

  test('vectors = the layer\'s activations, predictions = predict()\'s argmax, chunked; eager = script; no tensor leaked', async () => {
    const before = await settledLiveTensors();
    const e = await embeddings(eager, images(), { chunkSize: 7 });
    const s = await embeddings(script, images());
    // At most: the count is the process's, and a collection during the call may free wrappers that
    // earlier test files left for the garbage collector (seen under CI: 22 before, 16 after).
    expect(native().liveTensors()).toBe(before);
    expect([e.layer, e.count, e.dims]).toEqual(['fc1.act', COUNT, 1024]);
    const runner = new ProbeRunner(eager, 1000);
    let direct: Float32Array | undefined;
    await runner.featureMaps('fc1.act', COUNT, (row, into) => { for (let p = 0; p < N; ++p) into[p] = images()[row * N + p] / 255; }, (_s, maps) => { direct = maps.values; });
    runner.dispose();
    // Chunks of 7 against one batch of 40: the same values up to float32 summation order.
    let chunked = 0;
    e.vectors.forEach((v, i) => { chunked = Math.max(chunked, Math.abs(v - direct![i])); });
    expect(direct!.length).toBe(e.vectors.length);
    expect(chunked).toBeLessThan(1e-5);
    const probabilities = eager.predict(images());
    const argmax = Array.from({ length: COUNT }, (_, i) => {
      const row = Array.from(probabilities.subarray(i * 10, (i + 1) * 10));
      return row.indexOf(Math.max(...row));
    });
    expect(Array.from(e.predictions)).toEqual(argmax);
    expect(Array.from(s.predictions)).toEqual(argmax);
    let worst = 0;
    e.vectors.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - s.vectors[i])); });
    expect(worst).toBeLessThan(1e-4);
  });

  test('a layer with positions is flattened channel-major', async () => {
    const e = await embeddings(eager, images().subarray(0, 2 * N), { layer: 'conv2.pool' });
    expect(e.dims).toBe(64 * 7 * 7);
  });

  test.each([
    ['an unknown layer', () => embeddings(eager, images(), { layer: 'fc9' }), 'RangeError', /^Expected one of conv1, .*fc2 for layer but received "fc9" of type string$/],
    ['an unknown option', () => embeddings(eager, images(), { layers: 'fc1' } as never), 'TypeError', /^Unknown option "layers" in embedding options; expected one of layer, chunkSize$/],
    ['images of the wrong size', () => embeddings(eager, new Uint8Array(5), {}), 'RangeError', /^Expected whole 28x28 images/],
    ['a zero chunk', () => embeddings(eager, images(), { chunkSize: 0 }), 'RangeError', /^Expected integer in \[1, 65536\] for chunkSize but received 0/],
  ] as const)('bad input, before any native work: %s', async (_what, call, name, message) => {
    const before = await settledLiveTensors();
    const err = await call().then(() => { throw new Error('expected a rejection'); }, (e: Error) => e);
    expect(err.name).toBe(name);
    expect(err.message).toMatch(message);
    expect(native().liveTensors()).toBe(before);
  });
});

describe('the projector folder', () => {
  const dir = path.join(tmp, 'projector');
  const classNames = fashion().classNames;
  let e: Awaited<ReturnType<typeof embeddings>>;
  beforeAll(async () => {
    e = await embeddings(eager, images());
    writeProjector(dir, e, { images: images(), imageSize: [28, 28], labels: labels(), classNames, indices: Array.from({ length: COUNT }, (_, i) => 500 + i) });
  });

  test('tensors.tsv: one row per image, dims tab-separated values, equal to the vectors to 6 digits', () => {
    const rows = fs.readFileSync(path.join(dir, 'tensors.tsv'), 'utf8').trimEnd().split('\n');
    expect(rows).toHaveLength(COUNT);
    rows.forEach((row, i) => {
      const values = row.split('\t').map(Number);
      expect(values).toHaveLength(1024);
      values.forEach((v, j) => expect(Math.abs(v - e.vectors[i * 1024 + j])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(v))));
    });
  });

  test('metadata.tsv: a header, then label and prediction by class name, correct, the split index', () => {
    const rows = fs.readFileSync(path.join(dir, 'metadata.tsv'), 'utf8').trimEnd().split('\n');
    expect(rows[0]).toBe('label\tprediction\tcorrect\tindex');
    expect(rows).toHaveLength(COUNT + 1);
    rows.slice(1).forEach((row, i) => {
      const label = labels()[i];
      const predicted = e.predictions[i];
      expect(row).toBe(`${classNames[label]}\t${classNames[predicted]}\t${label === predicted ? 'yes' : 'no'}\t${500 + i}`);
    });
  });

  test('sprite.png: a square grid of the thumbnails, row-major from the top left', () => {
    const png = decodePng(fs.readFileSync(path.join(dir, 'sprite.png')));
    const grid = spriteGrid(COUNT, [28, 28]);
    expect(grid.side).toBe(7);
    expect([png.width, png.height]).toEqual([7 * 28, 7 * 28]);
    for (const i of [0, 8, COUNT - 1]) {
      for (const [y, x] of [[14, 14], [3, 20], [25, 9]]) {
        expect(png.at((i % 7) * 28 + x, Math.floor(i / 7) * 28 + y)[0]).toBe(images()[i * N + y * 28 + x]);
      }
    }
  });

  test('projector_config.pbtxt names the files relative to the folder', () => {
    expect(fs.readFileSync(path.join(dir, 'projector_config.pbtxt'), 'utf8')).toBe([
      'embeddings {', '  tensor_name: "fc1.act"', '  tensor_path: "tensors.tsv"', `  tensor_shape: ${COUNT}`, '  tensor_shape: 1024',
      '  metadata_path: "metadata.tsv"', '  sprite {', '    image_path: "sprite.png"', '    single_image_dim: 28', '    single_image_dim: 28', '  }', '}', '',
    ].join('\n'));
  });

  withTensorboard('TensorBoard\'s projector plugin (tensorboard --logdir <folder>) parses the config and reads the tensor, the metadata and the sprite', () => {
    const script = [
      'import json, os, sys',
      'from google.protobuf import text_format',
      'from tensorboard.plugins import base_plugin',
      'from tensorboard.plugins.projector import projector_config_pb2',
      'from tensorboard.plugins.projector import projector_plugin as pp',
      'd = sys.argv[1]',
      'config = text_format.Parse(open(os.path.join(d, "projector_config.pbtxt")).read(), projector_config_pb2.ProjectorConfig())',
      'plugin = pp.ProjectorPlugin(base_plugin.TBContext(logdir=d, data_provider=None))',
      // What the plugin does to decide whether the Projector tab shows: configs found for the logdir's root.
      'plugin._update_configs()',
      'emb = plugin._configs["."].embeddings[0]',
      'fpath = pp._rel_to_abs_asset_path(emb.tensor_path, plugin.config_fpaths["."])',
      'tensor = pp._read_tensor_tsv_file(fpath)',
      'meta = open(pp._rel_to_abs_asset_path(emb.metadata_path, plugin.config_fpaths["."])).read().splitlines()',
      'sprite = pp._rel_to_abs_asset_path(emb.sprite.image_path, plugin.config_fpaths["."])',
      'print(json.dumps({"parsed": config.embeddings[0].tensor_name, "runs": sorted(plugin._configs), "name": emb.tensor_name,',
      '  "shape": list(tensor.shape), "configShape": list(emb.tensor_shape), "meta": len(meta), "dim": list(emb.sprite.single_image_dim),',
      '  "sprite": os.path.getsize(sprite) > 0, "first": float(tensor[0].sum())}))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({
      parsed: 'fc1.act', runs: ['.'], name: 'fc1.act', shape: [COUNT, 1024], configShape: [COUNT, 1024], meta: COUNT + 1, dim: [28, 28], sprite: true,
    });
    expect(out.first).toBeCloseTo(e.vectors.subarray(0, 1024).reduce((a, b) => a + b, 0), 2);
  });

  test('a source that does not match the vectors is refused, nothing written', () => {
    const other = path.join(tmp, 'refused');
    expect(() => writeProjector(other, e, { images: images(), imageSize: [28, 28], labels: labels().subarray(0, 3) }))
      .toThrow(/^Expected 40 labels \(one per vector\) for source.labels but received a Uint8Array$/);
    expect(fs.existsSync(other)).toBe(false);
  });
});
