// The shape of every layer's output and, for the layers that keep a spatial layout, the receptive
// field of one of their units in input pixels, computed from the plan alone (no native work): what
// the probing functions check a channel index against before running anything, and where dataset
// examples crop an image around a unit.
//
// Receptive field arithmetic, per axis: a unit at index o of a layer sees input pixels
// [o * jump + offset, o * jump + offset + size - 1] (some of them padding, outside the image).
// A conv (kernel k, stride s, leading padding p) maps (size, jump, offset) to
// (size + (k - 1) jump, jump * s, offset - p jump); the 2x2 max pooling (stride 2) to
// (size + jump, 2 jump, offset); batch norm, activation and dropout keep it. Padding counts as
// pixels (Araujo et al. 2019): at an edge where a later layer reads its padding, a unit's field is
// an upper bound of the pixels that reach it (tested: inside the image it is exact without pooling).
import type { ModelPlan } from '../nn/spec';

/** A receptive field along both axes, [y, x]. */
export interface ReceptiveField {
  /** Input pixels one unit sees along each axis. */
  size: [number, number];
  /** Input pixels between neighbouring units. */
  jump: [number, number];
  /** First input pixel (may be negative: padding) seen by unit 0. */
  offset: [number, number];
}

/** One layer's output: [channels, height, width] for a stack of feature maps, [features, 1, 1] for a vector. */
export interface LayerShape {
  name: string;
  channels: number;
  height: number;
  width: number;
  /** Feature maps (conv side) rather than a vector (after the flatten or global pooling). */
  spatial: boolean;
  /** The receptive field of a unit; spatial layers only. */
  field?: ReceptiveField;
}

/** Every layer of the plan, in forward order and named as buildLayers() names them, with its output shape and receptive field. */
export function layerShapes(plan: ModelPlan): LayerShape[] {
  const shapes: LayerShape[] = [];
  let size: [number, number] = [1, 1];
  let jump: [number, number] = [1, 1];
  let offset: [number, number] = [0, 0];
  const spatial = (name: string, channels: number, height: number, width: number): void => {
    shapes.push({ name, channels, height, width, spatial: true, field: { size: [...size], jump: [...jump], offset: [...offset] } });
  };
  for (const c of plan.conv) {
    const [left, right, top, bottom] = c.padding;
    const k = c.kernelSize;
    const height = Math.floor((c.inputSize[0] + top + bottom - k) / c.stride) + 1;
    const width = Math.floor((c.inputSize[1] + left + right - k) / c.stride) + 1;
    size = [size[0] + (k - 1) * jump[0], size[1] + (k - 1) * jump[1]];
    offset = [offset[0] - top * jump[0], offset[1] - left * jump[1]];
    jump = [jump[0] * c.stride, jump[1] * c.stride];
    spatial(c.name, c.outChannels, height, width);
    if (c.batchNorm) spatial(c.batchNorm, c.outChannels, height, width);
    spatial(`${c.name}.act`, c.outChannels, height, width);
    if (c.pool) {
      size = [size[0] + jump[0], size[1] + jump[1]];
      jump = [jump[0] * 2, jump[1] * 2];
      spatial(`${c.name}.pool`, c.outChannels, c.outputSize[0], c.outputSize[1]);
    }
    if (c.dropout > 0) spatial(`${c.name}.dropout`, c.outChannels, c.outputSize[0], c.outputSize[1]);
  }
  const vector = (name: string, features: number): void => { shapes.push({ name, channels: features, height: 1, width: 1, spatial: false }); };
  vector(plan.globalAvgPool ? 'global_avg_pool' : 'flatten', plan.flatFeatures);
  for (const d of plan.dense) {
    vector(d.name, d.outFeatures);
    if (d.batchNorm) vector(d.batchNorm, d.outFeatures);
    if (d.activation) vector(`${d.name}.act`, d.outFeatures);
    if (d.dropout > 0) vector(`${d.name}.dropout`, d.outFeatures);
  }
  return shapes;
}

/**
 * The input pixels [y0, y1) x [x0, x1) a unit at (y, x) of a spatial layer sees, clipped to the image.
 * @example fieldCrop(field, 3, 5, [28, 28]) // { y0, y1, x0, x1 }
 */
export function fieldCrop(field: ReceptiveField, y: number, x: number, imageSize: [number, number]): { y0: number; y1: number; x0: number; x1: number } {
  const from = (o: number, axis: 0 | 1) => o * field.jump[axis] + field.offset[axis];
  const y0 = from(y, 0);
  const x0 = from(x, 1);
  return {
    y0: Math.max(0, y0), y1: Math.min(imageSize[0], y0 + field.size[0]),
    x0: Math.max(0, x0), x1: Math.min(imageSize[1], x0 + field.size[1]),
  };
}
