// The model-randomisation sanity check: ranks and Spearman's correlation by hand, the cascade's
// stages, and maps of saliency, integrated gradients and Grad-CAM that change (their correlation
// with the trained model's falls) as the layers are re-initialised from the top.
import { createModel, defaultSpec } from '../src/index';
import { native } from '../src/core/native';
import type { CnnModel } from '../src/nn/model';
import { randomisationCheck, ranks, spearman } from '../src/probe/randomisation';
import { fashion, FASHION_INPUT_NORM } from './fixtures';
import { settledLiveTensors } from './helpers';

test('ranks share ties; Spearman is 1 for the same order, -1 for the reverse, 0 against a constant', () => {
  expect(Array.from(ranks([3, 1, 2, 2]))).toEqual([4, 1, 2.5, 2.5]);
  expect(spearman([1, 5, 2, 9], [10, 50, 20, 90])).toBeCloseTo(1, 12);
  expect(spearman([1, 5, 2, 9], [4, 2, 3, 1])).toBeCloseTo(-1, 12);
  expect(spearman([1, 2, 3], [7, 7, 7])).toBe(0);
  // Pearson's correlation of the ranks [1, 2, 3, 4] and [2, 1, 4, 3]: 0.6.
  expect(spearman([0.1, 0.2, 0.3, 0.4], [5, 1, 8, 6])).toBeCloseTo(0.6, 12);
});

describe('on the tutorial network', () => {
  let model: CnnModel;
  const images = () => fashion().test.images.subarray(0, 2 * 784);
  beforeAll(() => { model = createModel(defaultSpec(), { seed: 8, inputNorm: FASHION_INPUT_NORM }); });
  afterAll(() => model?.dispose());

  // The bounds leave a margin over what this untrained network gives (2026-12-02): saliency falls to
  // about 0.05, Grad-CAM to about 0.3; integrated gradients only to about 0.88, because |map| is
  // |x - baseline| times a gradient, and the image's own structure (0 on the black background)
  // survives any weights (Adebayo et al. report the same for gradient x input).
  test.each([
    ['saliency', { method: 'saliency' }, 0.5],
    ['integrated gradients', { method: 'integrated-gradients', steps: 8 }, 0.95],
    ['Grad-CAM', { method: 'grad-cam' }, 0.6],
  ] as const)('%s maps change as the layers are re-initialised from the top', async (_name, options, bound) => {
    const before = await settledLiveTensors();
    const stages = await randomisationCheck(model, images(), options, 99);
    expect(native().liveTensors()).toBe(before);
    expect(stages.map((s) => s.randomised)).toEqual([['fc2'], ['fc2', 'fc1'], ['fc2', 'fc1', 'conv2'], ['fc2', 'fc1', 'conv2', 'conv1']]);
    for (const stage of stages) expect(stage.spearman).toBeLessThan(bound);
  });

  test('the trained model itself, re-initialised with its own weights, gives correlation 1 (the check compares like with like)', async () => {
    // Stage maps are compared image by image with the same targets: a model whose "fresh" weights are
    // its own (createModel with the seed that made it) must correlate perfectly at every stage.
    const stages = await randomisationCheck(model, images(), { method: 'saliency' }, 8);
    for (const s of stages) expect(s.spearman).toBeCloseTo(1, 6);
  });
});
