// The probing methods' one way into the network: rows of host pixels in [0, 1] go through the
// model in batches of at most `chunkSize` (so memory is bounded by the chunk, not by the number of
// noisy copies, path points or occluded images), and come back as host arrays: logits, the gradient
// of each row's target logit with respect to its pixels, or a layer's feature maps and their
// gradient. Every batch runs inside one tidy() scope, so no native tensor outlives it.
//
// Pixels are standardised with the model's inputNorm inside the differentiated graph: maps are
// taken with respect to the [0, 1] pixels that the exported models take.
//
// The model's parameters take no gradient during a batch (their requiresGrad is switched off and
// restored before the batch returns): the gradient wanted is the input's, and a model's .grad is
// left as it was (nothing accumulates there for a later optimizer step to apply).
import { native, NativeScriptModel, NativeTensor, valuesOf } from '../core/native';
import { fromHost, noGrad, ops } from '../core/ops';
import { tidy, track } from '../core/tidy';
import { buildLayers, type Layer } from '../nn/layers';
import type { CnnModel } from '../nn/model';
import { splitScriptSources } from '../nn/split-script';
import { imageGeometry } from './images';
import { isUniformNorm } from '../nn/model-options';

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes row `row`'s image (C * H * W values in [0, 1], channel-planar) into `into`. */
export type FillRow = (row: number, into: Float32Array) => void;

/** A layer's feature maps for a batch: [rows, channels, height, width]. */
export interface FeatureMaps { values: Float32Array; channels: number; height: number; width: number }

/** The network cut after a layer: standardised images to the layer's output, and that output to the logits. */
interface LayerCut {
  prefix(x: NativeTensor): NativeTensor;
  suffix(a: NativeTensor): NativeTensor;
  dispose(): void;
}

export class ProbeRunner {
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** Pixels per image, H * W (a pixel is all its channels). */
  readonly plane: number;
  /** Values per image, C * H * W: what a row of input, and of its gradient, holds. */
  readonly values: number;
  readonly classes: number;
  private readonly cuts = new Map<string, LayerCut>();

  constructor(readonly model: CnnModel, readonly chunkSize: number) {
    ({ channels: this.channels, height: this.height, width: this.width, plane: this.plane, values: this.values } = imageGeometry(model));
    this.classes = model.classes;
  }

  /** Logits (rows x classes) of `rows` inputs, forward only. */
  async logits(rows: number, fill: FillRow): Promise<Float32Array> {
    const out = new Float32Array(rows * this.classes);
    await this.batches(rows, fill, (start, end, batch) => {
      const values = tidy(() => noGrad(() => valuesOf(this.model.logits(this.standardise(this.input(batch, end - start))), 'float32')));
      out.set(values, start * this.classes);
    });
    return out;
  }

  /**
   * For each row, the gradient of its target's logit with respect to its pixels; `use` receives the
   * row's gradient (C * H * W values) and its logits.
   */
  async gradients(rows: number, fill: FillRow, targetOf: (row: number) => number,
    use: (row: number, gradient: Float32Array, logits: Float32Array) => void): Promise<void> {
    await this.batches(rows, fill, (start, end, batch) => {
      const count = end - start;
      const { gradient, logits } = tidy(() => {
        const x = this.input(batch, count);
        x.requiresGrad = true;
        const out = this.withFrozenParameters(() => {
          const y = this.model.logits(this.standardise(x));
          this.targetLogitSum(y, start, count, targetOf).backward();
          return y;
        });
        return { gradient: valuesOf(this.gradOf(x), 'float32'), logits: valuesOf(out, 'float32') };
      });
      for (let r = 0; r < count; ++r) {
        use(start + r, gradient.subarray(r * this.values, (r + 1) * this.values), logits.subarray(r * this.classes, (r + 1) * this.classes));
      }
    });
  }

  /** A layer's feature maps for each row (forward only). */
  async featureMaps(layer: string, rows: number, fill: FillRow, use: (start: number, maps: FeatureMaps) => void): Promise<void> {
    const cut = this.cut(layer);
    await this.batches(rows, fill, (start, end, batch) => {
      use(start, tidy(() => noGrad(() => this.mapsOf(cut.prefix(this.standardise(this.input(batch, end - start)))))));
    });
  }

  /**
   * A layer's feature maps for each row and the gradient of the row's target logit with respect to
   * them; `use` receives a batch (rows start..start + count) at a time.
   */
  async layerGradients(layer: string, rows: number, fill: FillRow, targetOf: (row: number) => number,
    use: (start: number, maps: FeatureMaps, gradient: Float32Array, logits: Float32Array) => void): Promise<void> {
    const cut = this.cut(layer);
    await this.batches(rows, fill, (start, end, batch) => {
      const count = end - start;
      const result = tidy(() => {
        const activations = noGrad(() => cut.prefix(this.standardise(this.input(batch, count))));
        // A leaf copy of the layer's output: its gradient is kept (a non-leaf's is not).
        const leaf = ops().detach(activations);
        leaf.requiresGrad = true;
        const out = this.withFrozenParameters(() => {
          const y = cut.suffix(leaf);
          this.targetLogitSum(y, start, count, targetOf).backward();
          return y;
        });
        return { maps: this.mapsOf(activations), gradient: valuesOf(this.gradOf(leaf), 'float32'), logits: valuesOf(out, 'float32') };
      });
      use(start, result.maps, result.gradient, result.logits);
    });
  }

  /**
   * For each row, the gradient with respect to its pixels of one unit of a layer's output: the mean
   * over positions of channel `unitOf(row)` for a stack of feature maps [N, C, h, w], the unit
   * itself for a vector layer [N, F]. `use` receives the row's gradient (C * H * W values) and the
   * unit's value. What feature visualisation ascends.
   */
  async unitGradients(layer: string, rows: number, fill: FillRow, unitOf: (row: number) => number,
    use: (row: number, gradient: Float32Array, value: number) => void): Promise<void> {
    const cut = this.cut(layer);
    await this.batches(rows, fill, (start, end, batch) => {
      const count = end - start;
      const { gradient, units, width } = tidy(() => {
        const x = this.input(batch, count);
        x.requiresGrad = true;
        const pooled = this.withFrozenParameters(() => {
          const a = cut.prefix(this.standardise(x));
          const perUnit = a.shape.length === 4 ? ops().globalAvgPool(a) : a;
          this.rowPickSum(perUnit, start, count, perUnit.shape[1], unitOf).backward();
          return perUnit;
        });
        return { gradient: valuesOf(this.gradOf(x), 'float32'), units: valuesOf(pooled, 'float32'), width: pooled.shape[1] };
      });
      for (let r = 0; r < count; ++r) use(start + r, gradient.subarray(r * this.values, (r + 1) * this.values), units[r * width + unitOf(start + r)]);
    });
  }

  /** Frees the compiled halves of any cut network. */
  dispose(): void {
    for (const cut of this.cuts.values()) cut.dispose();
    this.cuts.clear();
  }

  /** Runs `work` on batches of at most chunkSize rows, filled from `fill`; the event loop runs between batches. */
  private async batches(rows: number, fill: FillRow, work: (start: number, end: number, batch: Float32Array) => void): Promise<void> {
    const buffer = new Float32Array(Math.min(rows, this.chunkSize) * this.values);
    for (let start = 0; start < rows; start += this.chunkSize) {
      const end = Math.min(rows, start + this.chunkSize);
      for (let r = start; r < end; ++r) fill(r, buffer.subarray((r - start) * this.values, (r - start + 1) * this.values));
      work(start, end, buffer.subarray(0, (end - start) * this.values));
      if (end < rows) await nextTick();
    }
  }

  /** A batch [count, C, H, W] of float32 pixels on the model's device, a leaf (the host values are copied once into libtorch memory). */
  private input(batch: Float32Array, count: number): NativeTensor {
    const host = fromHost(batch, [count, this.channels, this.height, this.width]);
    return this.model.device === 'cpu' ? host : ops().detach(ops().to(host, this.model.device));
  }

  /** Pixels in [0, 1] to what the network takes: (x - mean[c]) / std[c], recorded by autograd (one mean and std, or one per channel). */
  private standardise(x: NativeTensor): NativeTensor {
    const norm = this.model.inputNorm;
    if (isUniformNorm(norm)) return norm.mean === 0 && norm.std === 1 ? x : ops().affine(x, 1 / norm.std, -norm.mean / norm.std);
    return ops().standardize(x, 1, norm.mean, norm.std);
  }

  /**
   * The sum over rows of each row's target logit, as a [1, 1] tensor: the logits flattened to one
   * row, times a one-hot row of the targets (a dot product is the one reduction the op set has that
   * picks an element per row).
   */
  private targetLogitSum(logits: NativeTensor, start: number, count: number, targetOf: (row: number) => number): NativeTensor {
    return this.rowPickSum(logits, start, count, this.classes, targetOf);
  }

  /** The sum over rows of element pick(row) of each row of a [count, width] tensor, as [1, 1] (see targetLogitSum). */
  private rowPickSum(values: NativeTensor, start: number, count: number, width: number, pick: (row: number) => number): NativeTensor {
    const mask = new Float32Array(count * width);
    for (let r = 0; r < count; ++r) mask[r * width + pick(start + r)] = 1;
    // The one-hot mask is copied into libtorch memory, next to the values.
    const onehot = ops().to(fromHost(mask, [1, count * width]), this.model.device);
    return ops().linear(ops().reshape(values, [1, count * width]), onehot, null);
  }

  private gradOf(leaf: NativeTensor): NativeTensor {
    const grad = leaf.grad();
    if (!grad) throw new Error('probe: the input received no gradient (does the network depend on it?)');
    return track(grad);
  }

  private mapsOf(tensor: NativeTensor): FeatureMaps {
    // A vector layer [N, F] is F maps of 1x1.
    const [, channels, height = 1, width = 1] = tensor.shape;
    return { values: valuesOf(tensor, 'float32'), channels, height, width };
  }

  private withFrozenParameters<T>(fn: () => T): T {
    const params = this.model.parameterTensors();
    const before = params.map((p) => p.requiresGrad);
    for (const p of params) p.requiresGrad = false;
    try {
      return fn();
    } finally {
      params.forEach((p, i) => { p.requiresGrad = before[i]; });
    }
  }

  /**
   * The network cut after `layer`, built once: an eager model runs its own layers (buildLayers over
   * its tensors); a scripted one compiles the two halves as TorchScript over the same tensors.
   */
  private cut(layer: string): LayerCut {
    const existing = this.cuts.get(layer);
    if (existing) return existing;
    const made = this.model.mode === 'script' ? this.scriptCut(layer) : this.eagerCut(layer);
    this.cuts.set(layer, made);
    return made;
  }

  private eagerCut(layer: string): LayerCut {
    const { plan } = this.model;
    const layers = buildLayers(plan.conv, plan.dense, plan.globalAvgPool, (name) => this.model.tensor(name));
    const at = layers.findIndex((l) => l.name === layer);
    if (at < 0) throw new RangeError(`Expected one of ${layers.map((l) => l.name).join(', ')} for layer but received "${layer}"`);
    const run = (part: Layer[], x: NativeTensor) => part.reduce((h, l) => l.forward(h, false), x);
    return { prefix: (x) => run(layers.slice(0, at + 1), x), suffix: (a) => run(layers.slice(at + 1), a), dispose: () => undefined };
  }

  private scriptCut(layer: string): LayerCut {
    const { plan } = this.model;
    const sources = splitScriptSources(plan, layer);
    const compile = (source: string): NativeScriptModel => {
      const module = new (native().ScriptModel)({
        source,
        parameters: plan.parameters.map((p) => [p.name, this.model.tensor(p.name)]),
        buffers: plan.buffers.map((b) => [b.name, this.model.tensor(b.name)]),
      });
      module.train(false);
      return module;
    };
    const prefix = compile(sources.prefix);
    let suffix: NativeScriptModel;
    try {
      suffix = compile(sources.suffix);
    } catch (err) {
      prefix.dispose();
      throw err;
    }
    return {
      prefix: (x) => track(prefix.forward(x)),
      suffix: (a) => track(suffix.forward(a)),
      dispose: () => { prefix.dispose(); suffix.dispose(); },
    };
  }
}
