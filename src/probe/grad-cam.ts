// Grad-CAM (Selvaraju et al. 2017) and HiRes-CAM (Draelos & Carin 2020) at a conv layer with
// feature maps A_k and G_k = d logit / d A_k:
//   Grad-CAM:  ReLU(sum_k alpha_k A_k), alpha_k = the mean of G_k over the map's positions;
//   HiRes-CAM: ReLU(sum_k G_k * A_k), elementwise (no averaging: faithful to the gradient at every position).
// The map is then resized to the input with bilinear interpolation (align_corners=False, as
// PyTorch's interpolate) and left unnormalised: its scale is the logit's.
// On a conv -> global average pooling -> linear network, G_k = w_ck / (h w) everywhere, so both
// equal ReLU(CAM) / (h w), CAM being Zhou et al.'s class activation map sum_k w_ck A_k.
import { upsampleBilinear } from './image-ops';
import { AttributionMethod, copyImage } from './method';
import type { MethodName } from './options';
import type { FeatureMaps } from './runner';

/** One image's class map at the layer's resolution: ReLU(sum_k weight(k, position) A_k). */
function weightedMapSum(maps: FeatureMaps, gradient: Float32Array, row: number, averaged: boolean): Float32Array {
  const { channels, height, width } = maps;
  const area = height * width;
  const cam = new Float64Array(area);
  for (let k = 0; k < channels; ++k) {
    const at = (row * channels + k) * area;
    let alpha = 0;
    if (averaged) {
      for (let p = 0; p < area; ++p) alpha += gradient[at + p];
      alpha /= area;
    }
    for (let p = 0; p < area; ++p) cam[p] += (averaged ? alpha : gradient[at + p]) * maps.values[at + p];
  }
  const out = new Float32Array(area);
  for (let p = 0; p < area; ++p) out[p] = Math.max(cam[p], 0);
  return out;
}

function camMethod(name: MethodName, averaged: boolean): AttributionMethod {
  return {
    name,
    perPixel: true,
    async attribute(runner, block, settings) {
      const n = runner.plane;
      const maps = new Float32Array(block.count * n);
      await runner.layerGradients(settings.layer!, block.count, copyImage(block, runner.values), (row) => block.targets[row], (start, features, gradient) => {
        const rows = features.values.length / (features.channels * features.height * features.width);
        for (let r = 0; r < rows; ++r) {
          const cam = weightedMapSum(features, gradient, r, averaged);
          maps.set(upsampleBilinear(cam, 1, features.height, features.width, runner.height, runner.width), (start + r) * n);
        }
      });
      return { maps };
    },
  };
}

export const gradCam = camMethod('grad-cam', true);
export const hiresCam = camMethod('hires-cam', false);
