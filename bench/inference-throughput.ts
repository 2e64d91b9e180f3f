// Inference throughput, side by side in one run (issue 19: "evaluation and prediction throughput
// measured too"): the Fashion-MNIST test images evaluated (loss, accuracy and confusion, read back once)
// and predicted (class probabilities into one host array), in chunks of the training batch (128, the
// CPU default of evaluate() and predict()). convscope's eager and scripted models on each build, in
// float32 and bfloat16 (autocast); PyTorch's module in eval mode under inference_mode (NCHW,
// channels-last, bf16 autocast + channels-last); and with --peers Keras (model.evaluate /
// model.predict) and tfjs-node. Every contender starts from the uint8 pixels, runs one untimed pass
// and one timed pass in a process of its own; rounds interleaved.
import * as path from 'path';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/datasets';
import { packageRoot } from '../src/util/package-root';
import { projectPython } from '../src/util/project-python';
import {
  Contender, convscopeBuilds, interleavedRounds, PEER_NOT_SET_UP, peerSetup, spawnedContender, ThroughputRow, ThroughputSettings,
} from './training-throughput';

export type InferenceTask = 'evaluate' | 'predict';
export const INFERENCE_TASKS: InferenceTask[] = ['evaluate', 'predict'];
export const INFERENCE_REFERENCE = 'PyTorch eager';
/** The whole test split. */
export const TEST_IMAGES = 10_000;

const testData = () => ['--images', path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'),
  '--labels', path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')];

/** A contender with fixed arguments: the settings it needs are in them already. */
const spawned = (name: string, precision: 'fp32' | 'bf16', command: string, args: string[], env: Record<string, string> = {}, unavailable?: string): Contender =>
  spawnedContender(name, precision, command, () => args, env, unavailable);

export function inferenceContenders(task: InferenceTask, s: ThroughputSettings, images: number, withPeers = false): Contender[] {
  const common = ['--task', task, ...testData(), '--count', String(images), '--batch', String(s.batchSize), '--threads', String(s.threads)];
  const pytorchScript = path.join(packageRoot(), 'bench', 'pytorch_inference.py');
  const list: Contender[] = [
    spawned(INFERENCE_REFERENCE, 'fp32', projectPython(), [pytorchScript, ...common]),
    spawned('PyTorch channels-last', 'fp32', projectPython(), [pytorchScript, ...common, '--channels-last']),
    spawned('PyTorch channels-last', 'bf16', projectPython(), [pytorchScript, ...common, '--channels-last', '--precision', 'bf16']),
  ];
  const worker = path.join(packageRoot(), 'dist', 'bench', 'convscope-inference-worker.js');
  for (const { addon, libtorch } of convscopeBuilds()) {
    for (const precision of ['fp32', 'bf16'] as const) {
      for (const mode of ['eager', 'script'] as const) {
        list.push(spawned(`convscope ${mode} (libtorch ${libtorch})`, precision, process.execPath,
          [worker, mode, task, String(s.batchSize), String(images), precision], { CONVSCOPE_ADDON: addon }));
      }
    }
  }
  if (withPeers) {
    const { python, keras, tf, tfjs } = peerSetup();
    list.push(
      spawned(keras ? `Keras ${keras} (TF ${tf}) model.${task}` : `Keras model.${task}`, 'fp32', python,
        [path.join(packageRoot(), 'bench', 'keras_inference.py'), ...common], {}, keras ? undefined : PEER_NOT_SET_UP),
      spawned(tfjs ? `tfjs-node ${tfjs} model.${task}` : `tfjs-node model.${task}`, 'fp32', process.execPath,
        [path.join(packageRoot(), 'bench', 'tfjs_inference.js'), ...common], {}, tfjs ? undefined : PEER_NOT_SET_UP),
    );
  }
  return list;
}

/**
 * Both tasks, each in its own interleaved rounds. `images` defaults to the whole test split; a smoke
 * run (`--steps N`) takes N chunks.
 */
export function benchInferenceThroughput(s: ThroughputSettings, images = TEST_IMAGES, only?: RegExp, withPeers = false): Record<InferenceTask, { rows: ThroughputRow[]; errors: string[] }> {
  const result = {} as Record<InferenceTask, { rows: ThroughputRow[]; errors: string[] }>;
  for (const task of INFERENCE_TASKS) {
    const list = inferenceContenders(task, s, images, withPeers).filter((c) => !only || c.name === INFERENCE_REFERENCE || only.test(c.name));
    result[task] = interleavedRounds(list, INFERENCE_REFERENCE, s);
  }
  return result;
}
