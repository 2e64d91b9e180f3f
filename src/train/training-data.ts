// The training split as a run uses it: checked against the spec, standardised (per channel), uploaded
// to the training device once, and the augmentation's padding. Grey uint8 data (MNIST) takes exactly
// the path it always took: [N, H, W] bytes on the device and scalar standardisation.
import { native, NativeTensor } from '../core/native';
import { ops } from '../core/ops';
import type { InputNorm } from '../nn/model';
import { isUniformNorm } from '../nn/model-options';
import type { CnnSpec } from '../nn/spec';
import { expected } from '../util/validate';
import { channelsOf, LabelledImages } from './evaluate';
import type { ResolvedTrainOptions } from './options';

/**
 * The training split's standardisation: one mean and std over every pixel for grey images (as
 * always), one per channel for colour; float images are already in [0, 1].
 */
export function datasetNorm(split: LabelledImages): InputNorm {
  const channels = channelsOf(split);
  const scale = split.images instanceof Uint8Array ? 1 / 255 : 1;
  if (channels === 1) {
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < split.images.length; ++i) {
      const v = split.images[i] * scale;
      sum += v;
      squares += v * v;
    }
    const mean = sum / split.images.length;
    return { mean, std: Math.sqrt(Math.max(squares / split.images.length - mean * mean, 1e-12)) };
  }
  const plane = split.images.length / split.count / channels;
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  for (let i = 0; i < split.count; ++i) {
    for (let c = 0; c < channels; ++c) {
      const from = (i * channels + c) * plane;
      let s = 0;
      let q = 0;
      for (let p = from; p < from + plane; ++p) {
        const v = split.images[p] * scale;
        s += v;
        q += v * v;
      }
      sums[c] += s;
      squares[c] += q;
    }
  }
  const n = split.count * plane;
  const mean = Array.from(sums, (s) => s / n);
  return { mean, std: Array.from(squares, (q, c) => Math.sqrt(Math.max(q / n - mean[c] * mean[c], 1e-12))) };
}

/** The training split as device tensors, uploaded once for the whole run. */
export interface DeviceData {
  images: NativeTensor;
  labels: NativeTensor;
  count: number;
  dispose(): void;
}

/**
 * One deliberate copy of the training images into libtorch memory (then to the device); batches are
 * gathered from it natively. Grey images go up as [N, H, W] (the MNIST path, unchanged), others as
 * [N, C, H, W] in their own type (bytes stay bytes: a quarter of a float copy).
 */
export function uploadTrainingData(split: LabelledImages, channels: number, [height, width]: [number, number], device: string): DeviceData {
  const shape = channels === 1 && split.images instanceof Uint8Array ? [split.count, height, width] : [split.count, channels, height, width];
  const hostImages = new (native().Tensor)(split.images, shape);
  const hostLabels = new (native().Tensor)(split.labels, [split.count]);
  const images = device === 'cpu' ? hostImages : native().ops.to(hostImages, device);
  const labels = device === 'cpu' ? hostLabels : native().ops.to(hostLabels, device);
  if (images !== hostImages) hostImages.dispose();
  if (labels !== hostLabels) hostLabels.dispose();
  return { images, labels, count: split.count, dispose: () => { images.dispose(); labels.dispose(); } };
}

/**
 * Checks that every split fits the spec the run trains (channels, size, labels), before any native
 * work. `whose` says where the spec comes from (a resumed checkpoint, an initial model), for the
 * message: a colour dataset given to a grey checkpoint is named as such.
 */
export function checkSplitsFit(splits: [string, LabelledImages | undefined][], spec: Required<CnnSpec>, whose: string): void {
  const [height, width] = spec.inputSize;
  const channels = spec.inputChannels;
  for (const [name, split] of splits) {
    if (!split) continue;
    const has = channelsOf(split);
    if (has !== channels) {
      throw new RangeError(`Expected ${channels}-channel images (spec.inputChannels of ${whose}) for ${name} but it has ${has}-channel images` +
        (has !== 1 && channels === 1 ? '; a grey model cannot take colour images: train one with spec.inputChannels ' + has : ''));
    }
    if (split.images.length !== split.count * channels * height * width) {
      const perImage = split.images.length / split.count / channels;
      throw new RangeError(`Expected ${height}x${width} images for spec.inputSize but ${name} has ${perImage} pixels per image`);
    }
    if ((split.height !== undefined && split.height !== height) || (split.width !== undefined && split.width !== width)) {
      throw new RangeError(`Expected ${height}x${width} images for spec.inputSize but ${name} has ${split.height}x${split.width} images`);
    }
    const label = split.labels.findIndex((l) => l >= spec.classes);
    if (label >= 0) throw new RangeError(`Expected labels below ${spec.classes} (spec.classes) for ${name}.labels but ${name}.labels[${label}] is ${split.labels[label]}`);
  }
}

/**
 * The spec a new model is built from: the given one, with the input's channels and size taken from
 * the training data, and the classes from the dataset's class names, where the spec leaves them out
 * (a spec that names them is kept as it is, and a mismatch is an error in checkSplitsFit).
 * @example specForData({ conv: [...], dense: [64], dropout: 0 }, cifarTrain, names) // inputChannels 3, inputSize [32, 32], classes 10
 */
export function specForData(spec: CnnSpec, train: LabelledImages, classNames: string[]): CnnSpec {
  const adapted: CnnSpec = { ...spec };
  if (spec.classes === undefined && classNames.length >= 2) adapted.classes = classNames.length;
  if (spec.inputChannels === undefined) adapted.inputChannels = channelsOf(train);
  if (spec.inputSize === undefined && train.height !== undefined && train.width !== undefined) adapted.inputSize = [train.height, train.width];
  return adapted;
}

/** Whether the run augments its batches. */
export function augments(options: ResolvedTrainOptions): boolean {
  return options.augment.shift > 0 || options.augment.flip;
}

/**
 * The augmentation's padding in standardised values: a black pixel ('zero', torchvision's RandomCrop
 * padding before Normalize) or the channel's mean ('mean', 0 once standardised); one number for a
 * uniform norm, one per channel otherwise.
 */
export function padValues(options: ResolvedTrainOptions, norm: InputNorm): number | number[] {
  if (isUniformNorm(norm)) return options.augment.fill === 'mean' ? 0 : -norm.mean / norm.std;
  const means = norm.mean as number[] | number;
  const stds = norm.std as number[] | number;
  const count = Array.isArray(means) ? means.length : (stds as number[]).length;
  return Array.from({ length: count }, (_, c) => {
    if (options.augment.fill === 'mean') return 0;
    const m = Array.isArray(means) ? means[c] : means;
    const s = Array.isArray(stds) ? stds[c] : stds;
    return -m / s;
  });
}

/** A gathered batch as the eager path trains on it: augmented when the run asks. */
export function augmentedBatch(x: NativeTensor, options: ResolvedTrainOptions, norm: InputNorm): NativeTensor {
  return augments(options) ? ops().augment(x, options.augment.shift, options.augment.flip, padValues(options, norm)) : x;
}

/** A message for a bad class-name list, kept with the other data checks. */
export function checkClassNames(classNames: string[], spec: Required<CnnSpec>): void {
  // One name per class: the run folder, the confusion matrix and the report label classes by them.
  if (classNames.length !== spec.classes) {
    throw new RangeError(`${expected(`${spec.classes} class names (spec.classes)`, 'dataset.classNames', classNames)}`);
  }
}
