// Exports a trained network's filters: a mosaic per convolution layer (PNG), the raw weights as
// NumPy .npy files, and a JSON summary with per-filter statistics. Reads convscope checkpoints and
// TorchScript files (convscope's exports or Python's).
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { encodeNpy } from '../formats/npy';
import type { ParameterInfo } from '../nn/model';
import { loadTorchScript } from '../nn/torchscript';
import { checkArchive } from '../formats/archive-check';
import { loadModel } from '../train/checkpoint';
import { readRegularFile } from '../util/fs-read';
import { checkOneOf, checkString, expected } from '../util/validate';
import { COLORMAP_NAMES, ColormapName } from '../viz/colormaps';

export interface ExportFiltersOptions {
  /** A model.pt checkpoint or a TorchScript .pt file. */
  checkpoint: string;
  /** One layer ('conv1', 'conv2', 'fc1', ...); default conv1. Ignored with allLayers. */
  layer?: string;
  allLayers?: boolean;
  colormap?: ColormapName;
  normalize?: 'filter' | 'global';
  /** Output folder (created). */
  out: string;
  /** Draw at most this many filters/channels of higher layers (default 32 x 32). */
  maxTiles?: number;
}

export interface FilterStats { index: number; min: number; max: number; mean: number; std: number }

export interface LayerExport {
  layer: string;
  shape: number[];
  npy: string;
  png?: string;
  filters: FilterStats[];
}

function stats(values: Float32Array, perFilter: number, index: number): FilterStats {
  const slice = values.subarray(index * perFilter, (index + 1) * perFilter);
  let min = Infinity, max = -Infinity, sum = 0, squares = 0;
  for (const v of slice) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    squares += v * v;
  }
  const mean = sum / slice.length;
  return { index, min, max, mean, std: Math.sqrt(Math.max(squares / slice.length - mean * mean, 0)) };
}

/** The largest input read: what loadModel and loadTorchScript accept. */
const MAX_INPUT_BYTES = 4 * 1024 ** 3;

/** TorchScript archives carry their code; convscope checkpoints (state dicts) do not. */
function isTorchScript(file: string): boolean {
  return checkArchive(readRegularFile(file, MAX_INPUT_BYTES)).some((name) => /\/code\//.test(name));
}

function readWeights(file: string): ParameterInfo[] {
  if (isTorchScript(file)) {
    const model = loadTorchScript(file);
    try { return model.parameters(); } finally { model.dispose(); }
  }
  const model = loadModel(file);
  try { return model.parameters(); } finally { model.dispose(); }
}

/**
 * Writes `<layer>.png` (conv layers), `<layer>.npy` and `summary.json` into `out`.
 * @example exportFilters({ checkpoint: 'runs/x/model.pt', allLayers: true, out: 'filters' });
 */
export function exportFilters(options: ExportFiltersOptions): LayerExport[] {
  const checkpoint = checkString(options.checkpoint, 'checkpoint');
  const out = checkString(options.out, 'out');
  const colormap = checkOneOf(options.colormap ?? 'RdBu', 'colormap', COLORMAP_NAMES);
  const normalize = checkOneOf(options.normalize ?? 'global', 'normalize', ['filter', 'global'] as const);
  const weights = readWeights(checkpoint).filter((p) => p.name.endsWith('.weight'));
  const layers = weights.map((p) => p.name.replace(/\.weight$/, ''));
  const wanted = options.allLayers ? layers : [options.layer ?? 'conv1'];
  for (const layer of wanted) {
    if (!layers.includes(layer)) throw new RangeError(expected(`one of ${layers.join(', ')}`, 'layer', layer));
  }
  const { renderFilterMosaic, renderLayerGrid } = require('../viz/mosaic') as typeof import('../viz/mosaic');
  const maxTiles = options.maxTiles ?? 32;
  const exported: LayerExport[] = [];
  for (const layer of wanted) {
    const p = weights.find((w) => w.name === `${layer}.weight`)!;
    const perFilter = p.values.length / p.shape[0];
    const entry: LayerExport = {
      layer, shape: p.shape, npy: `${layer}.npy`,
      filters: Array.from({ length: p.shape[0] }, (_, i) => stats(p.values, perFilter, i)),
    };
    writeFileAtomic(path.join(out, entry.npy), encodeNpy({ data: p.values, shape: p.shape }));
    if (p.shape.length === 4) {
      const host = { data: p.values, shape: p.shape };
      const title = `${layer} ${p.shape.join('x')}`;
      const png = p.shape[1] === 1
        ? renderFilterMosaic(host, { colormap, normalize, labels: true, colorbar: true, title })
        : renderLayerGrid(host, { colormap, normalize, colorbar: true, title: `${title} (rows: filters, columns: input channels)`, maxFilters: maxTiles, maxChannels: maxTiles });
      entry.png = `${layer}.png`;
      writeFileAtomic(path.join(out, entry.png), png);
    }
    exported.push(entry);
  }
  writeFileAtomic(path.join(out, 'summary.json'), JSON.stringify({ checkpoint, colormap, normalize, layers: exported }, null, 2) + '\n');
  return exported;
}
