// Learning-rate schedules: the rate of every step of a run, a pure function of the step's index, so
// both paths (eager sets it before each step, the native loop takes a segment's rates) and a resumed
// run see the same rates. The formulas are PyTorch's (CosineAnnealingLR after a linear warm-up;
// OneCycleLR with its defaults), so a test can check them against torch.optim.lr_scheduler.

export const SCHEDULES = ['constant', 'cosine', 'one-cycle'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

export interface Schedule {
  kind: ScheduleKind;
  /** The rate the schedule is built around: constant's rate, cosine's start, one-cycle's peak. */
  learningRate: number;
  /** Steps of the whole run (every epoch). */
  totalSteps: number;
  /**
   * constant and cosine: steps of a linear warm-up from learningRate / warmupSteps up to
   * learningRate. one-cycle: the rising phase (default 30% of the run, PyTorch's pct_start).
   */
  warmupSteps: number;
}

/** OneCycleLR's defaults: it starts at peak / 25 and ends at that / 10^4. */
const ONE_CYCLE_DIV = 25;
const ONE_CYCLE_FINAL_DIV = 1e4;
const ONE_CYCLE_DEFAULT_RISE = 0.3;

/** From `start` to `end` along half a cosine, pct in [0, 1] (PyTorch's _annealing_cos). */
function cosineBetween(start: number, end: number, pct: number): number {
  return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
}

/** Whether the rate changes during the run (else the optimizer's rate is set once). */
export function isScheduled(s: Schedule): boolean {
  return s.kind !== 'constant' || s.warmupSteps > 0;
}

/** The rate of step `step` (0-based, over the whole run). */
export function learningRateAt(s: Schedule, step: number): number {
  if (s.kind === 'one-cycle') {
    // OneCycleLR, two phases: [0, rise] up from initial to the peak, then down to the minimum.
    const initial = s.learningRate / ONE_CYCLE_DIV;
    const minimum = initial / ONE_CYCLE_FINAL_DIV;
    const riseEnd = (s.warmupSteps > 0 ? s.warmupSteps / s.totalSteps : ONE_CYCLE_DEFAULT_RISE) * s.totalSteps - 1;
    const last = s.totalSteps - 1;
    if (step <= riseEnd) return cosineBetween(initial, s.learningRate, riseEnd > 0 ? step / riseEnd : 1);
    return cosineBetween(s.learningRate, minimum, last > riseEnd ? (step - riseEnd) / (last - riseEnd) : 1);
  }
  if (step < s.warmupSteps) return (s.learningRate * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.learningRate;
  // Cosine from the rate down to zero over the steps after the warm-up.
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  return cosineBetween(s.learningRate, 0, Math.min(1, (step - s.warmupSteps) / span));
}

/** The rates of steps [from, to). */
export function learningRates(s: Schedule, from: number, to: number): Float64Array {
  const out = new Float64Array(Math.max(0, to - from));
  for (let i = 0; i < out.length; ++i) out[i] = learningRateAt(s, from + i);
  return out;
}
