// Activation maps: what each filter of a layer responds to on one input image, shown beside it.
import type { CnnModel } from '../nn/model';
import { prepareImages } from '../nn/model';
import { checkFinitePixels } from '../nn/model-options';
import { valuesOf } from '../core/native';
import { noGrad } from '../core/ops';
import { tidy } from '../core/tidy';
import { checkKnownKeys, checkObject, checkString, expected } from '../util/validate';
import { checkColormap } from './colormaps';

export interface ActivationOptions {
  colormap?: 'gray' | 'viridis' | 'magma' | 'RdBu';
  title?: string;
}

/**
 * Renders the feature maps of `layer` (a name from model.layerNames(), e.g. 'conv1' or 'conv1.act')
 * for one image (the model's input size, uint8 or float in [0, 1]; colour images channel-planar, shown
 * in colour) as a PNG: the input on the left, one tile per filter.
 * @example fs.writeFileSync('act.png', renderActivations(model, test.images.subarray(0, 784), 'conv1.act'));
 */
export function renderActivations(model: CnnModel, image: Uint8Array | Float32Array, layer: string, options: ActivationOptions = {}): Buffer {
  const { renderFeatureMaps } = require('./mosaic') as typeof import('./mosaic');
  // Checked before the forward pass, like every public function's options.
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'renderActivations options', ['colormap', 'title']);
  const colormap = checkColormap(o.colormap ?? 'viridis', 'options.colormap');
  const title = o.title === undefined ? undefined : checkString(o.title, 'options.title');
  if (!(image instanceof Uint8Array) && !(image instanceof Float32Array)) {
    throw new TypeError(expected('a Uint8Array or Float32Array image', 'image', image));
  }
  const names = model.layerNames();
  if (!names.includes(layer)) throw new RangeError(expected(`one of ${names.join(', ')}`, 'layer', layer));
  const [h, w] = model.inputSize;
  const c = model.inputChannels;
  if (image.length !== c * h * w) {
    throw new RangeError(expected(`one ${c === 1 ? '' : `${c}x`}${h}x${w} image (${c * h * w} values)`, 'image', image));
  }
  if (c !== 1 && c !== 3) throw new RangeError(`renderActivations shows grey or colour inputs; the model takes ${c}-channel images`);
  checkFinitePixels(image, 'image');
  const { maps, shape } = tidy(() => noGrad(() => {
    const x = prepareImages(image, 1, model);
    const output = model.forwardWithActivations(x).find((o) => o.name === layer)!.output;
    return { maps: valuesOf(output, 'float32'), shape: output.shape };
  }));
  if (shape.length !== 4) throw new RangeError(`layer ${layer} has output shape [${shape}]; activation maps need a convolutional layer`);
  const input = Float32Array.from(image, (v) => (image instanceof Uint8Array ? v / 255 : v));
  return renderFeatureMaps({ data: input, shape: c === 1 ? [h, w] : [c, h, w] }, { data: maps, shape }, {
    colormap,
    title: title ?? `${layer}: ${shape[1]} feature maps`,
  });
}
