// The public functions the bad-options table calls, plus a predict on a small model.
export { createModel, defaultSpec, evaluate, loadDataset, loadModel, readIdx, renderFilterMosaic, setNumThreads, SummaryWriter, trainCnn } from '../src/index';
import { createModel } from '../src/index';
import { smallSpec } from './fixtures';

// Made up front so that the table's tensor count measures only the bad call.
const model = createModel(smallSpec(), { seed: 1 });
export function predictProbabilitiesForTest(images: Uint8Array): Float32Array {
  return model.predict(images);
}
