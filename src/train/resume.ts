// Resuming a run from its checkpoint (trainCnn's resumeFrom). What the checkpoint says is checked
// against the run's options before any training: an optimizer state of another kind would reach
// libtorch's internal asserts, and a spec given with resumeFrom would otherwise be silently ignored.
import { CnnModel } from '../nn/model';
import { CnnSpec, planModel, specsEqual } from '../nn/spec';
import { expected } from '../util/validate';
import { loadCheckpoint, LoadedCheckpoint, PartialEpoch } from './checkpoint';
import type { EpochRecord, ResolvedTrainOptions } from './options';

/** What a resumed run starts from. */
export interface Resume {
  model: CnnModel;
  optimizerState?: Buffer;
  /** Records of the completed epochs. */
  history: EpochRecord[];
  firstEpoch: number;
  /** Where an abort stopped inside `firstEpoch`, when it did. */
  partial?: PartialEpoch;
}

function checkResumable(file: string, loaded: LoadedCheckpoint, options: ResolvedTrainOptions, givenSpec: unknown): void {
  const { meta } = loaded;
  if (givenSpec !== undefined && !specsEqual(meta.spec, givenSpec as CnnSpec)) {
    throw new RangeError(`${expected(`the spec ${file} was trained with (${JSON.stringify(planModel(meta.spec).spec)}), or none`, 'spec', givenSpec)}: ` +
      JSON.stringify(planModel(givenSpec).spec));
  }
  const saved = meta.optimizer?.kind;
  if (loaded.optimizerState && saved !== undefined && saved !== options.optimizer) {
    throw new RangeError(expected(`"${saved}" (the optimizer whose state ${file} holds)`, 'optimizer', options.optimizer));
  }
  // The optimizer's state has one parameter group per decay setting: it only loads into the same groups.
  const decayOn = meta.training?.options.weightDecayOn ?? 'all';
  if (loaded.optimizerState && decayOn !== options.weightDecayOn) {
    throw new RangeError(expected(`"${String(decayOn)}" (the weight decay scope of the optimizer state ${file} holds)`, 'weightDecayOn', options.weightDecayOn));
  }
  const done = meta.training?.epoch ?? 0;
  if (options.epochs <= done) {
    throw new RangeError(expected(`more than ${done} epochs (${file} has done ${done})`, 'epochs', options.epochs));
  }
}

/**
 * Loads `options.resumeFrom` and checks it against the run's options; the caller owns the model.
 * `givenSpec` is the spec the caller passed (undefined when it gave none).
 */
export function openResume(options: ResolvedTrainOptions, givenSpec: unknown, device: string): Resume {
  const file = options.resumeFrom!;
  const loaded = loadCheckpoint(file, { mode: options.mode, device });
  try {
    checkResumable(file, loaded, options, givenSpec);
  } catch (err) {
    loaded.model.dispose();
    throw err;
  }
  const state = loaded.meta.training;
  return {
    model: loaded.model,
    optimizerState: loaded.optimizerState,
    history: state ? [...state.history] : [],
    firstEpoch: (state?.epoch ?? 0) + 1,
    partial: state?.partial,
  };
}
