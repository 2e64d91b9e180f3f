// The public functions the bad-options table calls, plus a predict on a small model.
export { createModel, defaultSpec, evaluate, loadDataset, loadModel, loadTorchScript, readIdx, renderActivations, renderFilterMosaic, setNumThreads, SummaryWriter, trainCnn } from '../src/index';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, renderActivations } from '../src/index';
import { smallSpec } from './fixtures';

// Made up front so that the table's tensor count measures only the bad call.
const model = createModel(smallSpec(), { seed: 1 });
export function predictProbabilitiesForTest(images: Uint8Array | Float32Array, options?: { chunkSize?: number }): Float32Array {
  return model.predict(images, options);
}

export function renderActivationsForTest(image: Uint8Array | Float32Array, options?: object): Buffer {
  return renderActivations(model, image, 'conv1', options as never);
}

/** A 10-class TorchScript file of the same model, for loadTorchScript's options; remove `scratchDir` after. */
export const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bad-options-'));
export const torchScriptFile = path.join(scratchDir, 'model.ts.pt');
model.exportTorchScript(torchScriptFile);
export const checkpointFile = path.join(scratchDir, 'model.pt');
model.save(checkpointFile);
