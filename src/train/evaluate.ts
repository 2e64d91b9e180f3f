// Chunked evaluation: the split is visited chunkSize images at a time, so peak memory grows with the
// chunk, not with the split. Loss and accuracy are weighted by each chunk's size.
import { native, NativeTensor, valuesOf } from '../core/native';
import { fromHost, noGrad, ops } from '../core/ops';
import { Classifier, prepareImages } from '../nn/model';
import { tidy } from '../core/tidy';
import { checkFinitePixels, checkInferenceOptions, PredictOptions } from '../nn/model-options';
import { checkInteger, checkKnownKeys, checkNotShared, checkObject, expected } from '../util/validate';
import { checkTta, TtaOptions, ttaLogits } from './tta';

/**
 * Images and labels on the host: N x C x H x W images (channel-planar: image i is
 * `images.subarray(i*C*H*W, (i+1)*C*H*W)`; uint8 0..255 or float32 in [0, 1]) and N labels. `channels`
 * defaults to 1 (grey, as MNIST); `height` and `width`, when given, are checked against the model's.
 */
export interface LabelledImages {
  images: Uint8Array | Float32Array;
  labels: Uint8Array;
  count: number;
  channels?: number;
  height?: number;
  width?: number;
}

/** A split's channel count (1 when it does not say). */
export function channelsOf(split: LabelledImages): number {
  return split.channels ?? 1;
}

/** Images `from..to` of a split (views, no copy). @example sliceImages(dataset.train, 100, 200).count // 100 */
export function sliceImages(split: LabelledImages, from: number, to: number): LabelledImages {
  const pixels = split.images.length / split.count;
  return { ...split, images: split.images.subarray(from * pixels, to * pixels), labels: split.labels.subarray(from, to), count: to - from };
}

/**
 * Throws unless a split's images are the model's: `channels` x `height` x `width` each (names the
 * split, what it has and where the expectation comes from, before any native work).
 */
export function checkImagesFit(split: LabelledImages, name: string, channels: number, [height, width]: [number, number], whose: string): void {
  const has = channelsOf(split);
  if (has !== channels) {
    throw new RangeError(`Expected ${channels}-channel images (${whose}) for ${name} but it has ${has}-channel images` +
      (channels === 1 && has > 1 ? ': a grey model cannot take colour images; train a model with spec.inputChannels ' + has : ''));
  }
  if ((split.height !== undefined && split.height !== height) || (split.width !== undefined && split.width !== width)) {
    throw new RangeError(`Expected ${height}x${width} images (${whose}) for ${name} but it has ${split.height}x${split.width} images`);
  }
  const perImage = split.images.length / split.count;
  if (perImage !== channels * height * width) {
    throw new RangeError(`Expected ${channels === 1 ? '' : `${channels}x`}${height}x${width} images (${whose}) for ${name} but it has ${perImage} values per image`);
  }
}

/** The first `limit` images of a split (a view, no copy). @example takeImages(dataset.test, 2000).count // 2000 */
export function takeImages(split: LabelledImages, limit: number | undefined): LabelledImages {
  if (limit === undefined || limit >= split.count) return split;
  return sliceImages(split, 0, limit);
}

/**
 * Images per chunk (default 128 on the CPU, 1000 on a GPU), the forward pass's precision (default
 * 'fp32') and test-time augmentation (default none: src/train/tta.ts).
 * @example evaluate(model, dataset.test, { tta: { flip: true, shift: 1 } })
 */
export interface EvaluateOptions extends PredictOptions {
  /** Average the logits over the image, its mirror (`flip`) and copies moved by `shift` pixels. */
  tta?: TtaOptions;
}

export interface EvaluationResult {
  accuracy: number;
  /** Mean cross-entropy over the split. */
  loss: number;
  count: number;
  chunkSize: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

export function checkSplit(split: unknown, name: string): LabelledImages {
  const s = checkObject(split, name);
  if (!(s.images instanceof Uint8Array) && !(s.images instanceof Float32Array)) {
    throw new TypeError(expected('a Uint8Array (0..255) or Float32Array ([0, 1])', `${name}.images`, s.images));
  }
  if (!(s.labels instanceof Uint8Array)) throw new TypeError(expected('a Uint8Array', `${name}.labels`, s.labels));
  checkNotShared(s.images, `${name}.images`);
  checkNotShared(s.labels, `${name}.labels`);
  const count = checkInteger(s.count, `${name}.count`, 1);
  if (s.labels.length !== count) throw new RangeError(expected(`${count} labels`, `${name}.labels`, s.labels) + ` of length ${s.labels.length}`);
  if (s.images.length === 0 || s.images.length % count !== 0) {
    throw new RangeError(expected(`whole images: a multiple of ${count} pixels (${name}.count)`, `${name}.images`, s.images) + ` of ${s.images.length} pixels`);
  }
  for (const key of ['channels', 'height', 'width'] as const) if (s[key] !== undefined) checkInteger(s[key], `${name}.${key}`, 1);
  return s as unknown as LabelledImages;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Accuracy, mean loss and confusion matrix of a model on a split, chunk by chunk; the event loop
 * runs between chunks.
 * @example const { accuracy, confusion } = await evaluate(model, dataset.test, { chunkSize: 500 });
 */
export async function evaluate(model: Classifier, split: LabelledImages, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const data = checkSplit(split, 'split');
  const given = checkObject(options, 'options');
  checkKnownKeys(given, 'evaluate options', ['chunkSize', 'precision', 'tta']);
  const { tta: ttaOption, ...inference } = given;
  const { chunkSize, precision } = checkInferenceOptions(inference, model.device, 'evaluate');
  const tta = checkTta(ttaOption, 'tta');
  checkImagesFit(data, 'split', model.inputChannels, model.inputSize, "the model's");
  checkFinitePixels(data.images, 'split.images');
  const pixels = data.images.length / data.count;
  const classes = model.classes;
  // A label the model has no class for would reach libtorch's loss ("Target 200 is out of bounds").
  const outOfRange = data.labels.findIndex((l) => l >= classes);
  if (outOfRange >= 0) {
    throw new RangeError(`Expected labels below ${classes} (the model's classes) for split.labels but split.labels[${outOfRange}] is ${data.labels[outOfRange]}`);
  }
  const onCpu = model.device === 'cpu';
  // The loss sum and the confusion counts accumulate where the model runs and are read once at the
  // end: a read-back per chunk would wait for a GPU every chunk.
  let lossSum: NativeTensor | undefined;
  let counts: NativeTensor | undefined;
  const accumulate = (total: NativeTensor | undefined, part: NativeTensor): NativeTensor => {
    if (!total) return part;
    const sum = native().ops.add(total, part);
    total.dispose();
    part.dispose();
    return sum;
  };
  let confusion: Float64Array;
  let loss: number;
  try {
    for (let start = 0; start < data.count; start += chunkSize) {
      const end = Math.min(data.count, start + chunkSize);
      // tidy frees the chunk's tensors but the two it returns, which join the running totals.
      const [chunkLoss, chunkCounts] = tidy(() => noGrad(() => {
        const x = prepareImages(data.images.subarray(start * pixels, end * pixels), end - start, model);
        // The chunk's labels are copied into libtorch memory next to its images.
        const y = ops().to(fromHost(data.labels.subarray(start, end), [end - start]), model.device, 'int64');
        // The logits in the asked precision (averaged over the TTA views); the loss and the counts from them in float32.
        const logits = ttaLogits(model, x, tta, precision);
        return [ops().to(ops().crossEntropy(logits, y, 'sum'), null, 'float64'), ops().confusion(ops().argmax(logits, 1), y, classes)] as const;
      }));
      lossSum = accumulate(lossSum, chunkLoss);
      counts = accumulate(counts, chunkCounts);
      // Each chunk's activations are freed and reused by the next; handing them back to the OS after
      // every chunk (malloc_trim) made every chunk fault its memory in again, 3-5x the time of the
      // forward passes, so that happens once, below.
      if (end < data.count) await nextTick();
    }
    loss = valuesOf(lossSum!, 'float64')[0];
    confusion = Float64Array.from(valuesOf(counts!, 'int64'), Number);
  } finally {
    lossSum?.dispose();
    counts?.dispose();
    // On the CPU the freed activations go back to the OS once evaluation is done, so that the
    // process does not keep the chunk's peak.
    if (onCpu) native().releaseFreeMemory();
  }
  let correct = 0;
  const rows: number[][] = [];
  for (let t = 0; t < classes; ++t) {
    rows.push(Array.from(confusion.subarray(t * classes, (t + 1) * classes)));
    correct += confusion[t * classes + t];
  }
  return { accuracy: correct / data.count, loss: loss / data.count, count: data.count, chunkSize, confusion: rows };
}

export type { NativeTensor };
