// An exponential moving average (EMA) of a model's weights during training, as the speed records keep
// one (airbench, hlb-CIFAR10): evaluation and the returned model use the average, which is smoother
// than the last step's weights. Batch normalisation's running statistics are averaged too, so the
// averaged weights meet statistics of the same history. The arithmetic is native (native/ema.h): the
// eager path updates after its steps from here, the native epoch loop after each of its own.
import { native, NativeEmaJob, NativeTensor } from '../core/native';
import { CnnModel, stateCopy } from '../nn/model';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject } from '../util/validate';

/** trainCnn's `ema` option. */
export interface EmaOptions {
  /** How much of the average each update keeps, in (0, 1) (default 0.99): it spans about 1 / (1 - decay) updates. */
  decay?: number;
  /** Optimizer steps between updates (default 1). */
  every?: number;
  /**
   * Lower the decay of the first updates to (1 + n) / (10 + n) at update n (default true), as
   * TensorFlow's ExponentialMovingAverage does with num_updates: without it, a short run's average
   * keeps a share of the untrained starting weights.
   */
  warmup?: boolean;
}

export type ResolvedEma = Required<EmaOptions>;

export const DEFAULT_EMA_DECAY = 0.99;

/** `value` as EMA options (undefined or false: no average, false also over a preset's); throws TypeError/RangeError naming `name`. */
export function checkEma(value: unknown, name: string): ResolvedEma | undefined {
  if (value === undefined || value === false) return undefined;
  const e = checkObject(value, name);
  checkKnownKeys(e, name, ['decay', 'every', 'warmup']);
  return {
    decay: checkNumber(e.decay ?? DEFAULT_EMA_DECAY, `${name}.decay`, 0, 1, { exclusiveMin: true, exclusiveMax: true }),
    every: checkInteger(e.every ?? 1, `${name}.every`, 1, 1 << 30),
    warmup: checkBoolean(e.warmup ?? true, `${name}.warmup`),
  };
}

/** The decay of update number `update` (1, 2, ...); native/ema.h's EffectiveDecay is the same formula. */
export function effectiveDecay(settings: ResolvedEma, update: number): number {
  return settings.warmup ? Math.min(settings.decay, (1 + update) / (10 + update)) : settings.decay;
}

/**
 * The average of one run's model: copies of every parameter and buffer, updated in place. The model
 * keeps training its own weights; `swapIn` puts the average into the model's tensors (shared with its
 * TorchScript module) and the training weights into the average's, `swapIn` again undoes it.
 */
export class WeightAverage {
  private readonly sources: NativeTensor[];
  private readonly averages: NativeTensor[];

  constructor(model: CnnModel, readonly settings: ResolvedEma) {
    const names = [...model.plan.parameters, ...model.plan.buffers].map((t) => t.name);
    this.sources = names.map((n) => model.tensor(n));
    // The average starts at the starting weights (copies on the model's device, taking no gradient).
    this.averages = [];
    try {
      for (const s of this.sources) this.averages.push(stateCopy(s));
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** The eager path, after the optimizer's step `runStep` (0-based, counted over the run). */
  afterStep(runStep: number): void {
    const steps = runStep + 1;
    if (steps % this.settings.every === 0) native().ema.update(this.averages, this.sources, effectiveDecay(this.settings, steps / this.settings.every));
  }

  /** What the native epoch loop needs to update the average itself, for a segment starting at the run's step `firstStep`. */
  job(firstStep: number): NativeEmaJob {
    const { decay, every, warmup } = this.settings;
    return { averages: this.averages, sources: this.sources, decay, warmup, every, firstStep };
  }

  /** Exchanges the model's weights and the average (call again to undo). */
  swapIn(): void {
    native().ema.swap(this.sources, this.averages);
  }

  /** Runs `fn` with the average in the model, the training weights back afterwards (also when fn throws). */
  async withAverage<T>(fn: () => Promise<T>): Promise<T> {
    this.swapIn();
    try {
      return await fn();
    } finally {
      this.swapIn();
    }
  }

  dispose(): void {
    for (const a of this.averages) a.dispose();
    this.averages.length = 0;
  }
}
