// One page that gathers what training runs and experiments left on disk: mosaics, the filters'
// evolution, activation maps for one test image of every class, curves, the confusion matrix as a
// table, and each experiment's results table and charts. The page is built once as a list of
// blocks and written twice from it: report.html, self-contained (images as data: URIs, so it can be
// mailed or archived as one file), and report.md, which links the same images under assets/.
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset } from '../data/datasets';
import { writeFileAtomic } from '../util/fs-atomic';
import { existsInside, OutsideFolderError, readRegularFile, readRegularTextFile } from '../util/fs-read';
import { loadModel } from '../train/checkpoint';
import { DATASETS, DatasetName, InMemoryDataset } from '../train/options';
import { RUN_FILES } from '../train/run-recorder';
import { checkKnownKeys, checkObject, checkOneOf, checkString, expected } from '../util/validate';
import { markdownTable } from './markdown';
import { groupFigures, RESULT_FILES, type ResultsFile } from './results';

/** Options of {@link buildReport}. @example const o: ReportOptions = { out: 'report', experiments: ['experiments/sweep-kernel'] }; */
export interface ReportOptions {
  /** Output folder for report.html, report.md and assets/ (default 'report'). */
  out?: string;
  /** Experiment folders (written by sweepKernelSizes, fewerFilters, ...) to include after the runs. */
  experiments?: string[];
  /** Dataset for the activation maps' sample images (default: the one each run's config.json names). */
  dataset?: DatasetName | InMemoryDataset;
  dataDir?: string;
  /** Layer whose activation maps are drawn (default 'conv1.act': after the first layer's ReLU). */
  layer?: string;
  /** Page title (default 'convscope report'). */
  title?: string;
  /**
   * Folders written by the probing commands (explain, explain --summary / --across-training,
   * visualize, examples, embeddings) to include after the experiments: their pictures and settings.
   */
  explanations?: string[];
}

/** What {@link buildReport} wrote. @example buildReport(['runs/a']).html // 'report/report.html' */
export interface ReportResult {
  html: string;
  markdown: string;
  /** Every picture copied or drawn under assets/ (absolute or relative to the working folder, like `out`). */
  assets: string[];
  /** Things the report had to leave out (a missing picture, a run without model.pt), one line each. */
  missing: string[];
}

/** File names buildReport writes under `out`. @example path.join(out, REPORT_FILES.html) */
export const REPORT_FILES = { html: 'report.html', markdown: 'report.md', assets: 'assets' } as const;

/** A table cell; `shade` in [0, 1] tints the cell in the HTML page (e.g. a confusion count's share of its row). */
type Cell = string | { text: string; shade?: number; header?: boolean };
interface FigureRef { file: string; caption: string }
type Block =
  | { kind: 'heading'; level: number; text: string }
  | { kind: 'text'; text: string }
  | { kind: 'table'; headers: string[]; rows: Cell[][]; caption?: string }
  /** Pictures in a table, `perRow` to a row (default: all in one row), each caption above its picture. */
  | { kind: 'figures'; title?: string; perRow?: number; figures: FigureRef[] };

const MIME: Record<string, string> = { '.png': 'image/png', '.gif': 'image/gif', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml' };

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function cellText(c: Cell): string {
  return typeof c === 'string' ? c : c.text;
}

/** A folder-name-safe slug. */
function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

/** Bounds on what the report reads from a run or experiment folder: JSON files and pictures. */
const MAX_JSON_BYTES = 64 * 1024 ** 2;
const MAX_ASSET_BYTES = 256 * 1024 ** 2;

function readJson(file: string): unknown {
  return JSON.parse(readRegularTextFile(file, MAX_JSON_BYTES));
}

/** Collects assets under out/assets and the list of what could not be shown. */
class AssetStore {
  readonly written: string[] = [];
  readonly missing: string[] = [];
  constructor(private readonly out: string) {}

  /**
   * Where `file` lies with respect to the input folder `root` that names it, symbolic links and `..`
   * resolved: a file outside is never read, and is listed among what the report left out.
   */
  locate(root: string, file: string): 'inside' | 'missing' | 'outside' {
    try {
      return existsInside(root, file) ? 'inside' : 'missing';
    } catch (err) {
      if (!(err instanceof OutsideFolderError)) throw err;
      this.missing.push(`${err.message}: not read`);
      return 'outside';
    }
  }

  /** Copies `source`, a file of the input folder `root`, to assets/<folder>/<name>; returns its path relative to `out`, or undefined when absent or outside `root`. */
  copy(root: string, source: string, folder: string, name = path.basename(source)): string | undefined {
    const where = this.locate(root, source);
    if (where === 'missing') this.missing.push(`${source}: not found`);
    if (where !== 'inside') return undefined;
    return this.write(readRegularFile(source, MAX_ASSET_BYTES), folder, name);
  }

  write(bytes: Uint8Array, folder: string, name: string): string {
    const relative = path.posix.join(REPORT_FILES.assets, slug(folder), slug(name));
    const target = path.join(this.out, relative);
    writeFileAtomic(target, bytes);
    this.written.push(target);
    return relative;
  }
}

interface RunConfig {
  options?: { dataset?: string };
  classNames?: string[];
  spec?: unknown;
  device?: string;
  trainCount?: number;
  testCount?: number;
}

interface HistoryRow { epoch: number; trainLoss: number; trainAccuracy: number; testLoss: number; testAccuracy: number; seconds: number }

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** First test image of every class: the activation maps' inputs. */
function oneImagePerClass(dataset: InMemoryDataset, classes: number): { label: number; image: Uint8Array | Float32Array }[] {
  const split = dataset.test;
  const pixels = split.images.length / split.count;
  const out: { label: number; image: Uint8Array | Float32Array }[] = [];
  for (let label = 0; label < classes; label++) {
    const i = split.labels.indexOf(label);
    if (i >= 0) out.push({ label, image: split.images.subarray(i * pixels, (i + 1) * pixels) });
  }
  return out;
}

function confusionTable(confusion: number[][], classNames: string[]): Block {
  const names = confusion.map((_, i) => classNames[i] ?? String(i));
  return {
    kind: 'table',
    caption: 'Confusion matrix on the test images (rows: true class, columns: predicted class; shade: share of the row)',
    headers: ['true \\ predicted', ...names],
    rows: confusion.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return [{ text: names[i], header: true }, ...row.map((v) => ({ text: String(v), shade: v / total }))];
    }),
  };
}

function runBlocks(runDir: string, index: number, assets: AssetStore, o: ResolvedReport, datasets: Map<string, InMemoryDataset>): Block[] {
  const name = path.basename(path.resolve(runDir));
  const folder = `run-${index + 1}-${name}`;
  const file = (f: string) => path.join(runDir, f);
  // Every file of the run is read only where it lies inside the run folder (a link out is left out).
  const where = (f: string) => assets.locate(runDir, file(f));
  const blocks: Block[] = [{ kind: 'heading', level: 2, text: `Run ${index + 1}: ${name}` }];
  const config = (where(RUN_FILES.config) === 'inside' ? readJson(file(RUN_FILES.config)) : {}) as RunConfig;
  const classNames = config.classNames ?? [];
  const datasetName = config.options?.dataset ?? 'unknown';
  blocks.push({ kind: 'text', text: `Folder ${runDir}; dataset ${datasetName}, ${config.trainCount ?? '?'} training / ${config.testCount ?? '?'} test images, device ${config.device ?? '?'}.` });

  const historyAt = where(RUN_FILES.history);
  if (historyAt === 'inside') {
    const history = readJson(file(RUN_FILES.history)) as HistoryRow[];
    blocks.push({
      kind: 'table', caption: 'Training history',
      headers: ['epoch', 'train loss', 'train accuracy', 'test loss', 'test accuracy', 'seconds'],
      rows: history.map((r) => [String(r.epoch), r.trainLoss.toFixed(4), pct(r.trainAccuracy), r.testLoss.toFixed(4), pct(r.testAccuracy), r.seconds.toFixed(1)]),
    });
  } else if (historyAt === 'missing') {
    assets.missing.push(`${file(RUN_FILES.history)}: not found`);
  }

  const pictures: FigureRef[] = [];
  const add = (f: string, caption: string) => {
    const rel = assets.copy(runDir, file(f), folder);
    if (rel) pictures.push({ file: rel, caption });
  };
  add(RUN_FILES.mosaic, 'conv1 filters after training');
  add(RUN_FILES.filtersGif, 'conv1 filters during training (animated)');
  add(RUN_FILES.curves, 'loss and accuracy per epoch');
  if (pictures.length > 0) blocks.push({ kind: 'figures', title: 'Filters and curves', figures: pictures });

  const confusionAt = where(RUN_FILES.confusion);
  if (confusionAt === 'inside') {
    blocks.push(confusionTable(readJson(file(RUN_FILES.confusion)) as number[][], classNames));
  } else if (confusionAt === 'missing') {
    assets.missing.push(`${file(RUN_FILES.confusion)}: not found`);
  }

  const activations = activationFigures(runDir, folder, classNames, datasetName, assets, o, datasets);
  if (activations.length > 0) {
    blocks.push({ kind: 'figures', title: `Activation maps (${o.layer}) for one test image of every class`, perRow: 3, figures: activations });
  }
  return blocks;
}

function activationFigures(runDir: string, folder: string, classNames: string[], datasetName: string, assets: AssetStore, o: ResolvedReport, datasets: Map<string, InMemoryDataset>): FigureRef[] {
  const checkpoint = path.join(runDir, RUN_FILES.checkpoint);
  const checkpointAt = assets.locate(runDir, checkpoint);
  if (checkpointAt !== 'inside') {
    if (checkpointAt === 'missing') assets.missing.push(`${checkpoint}: not found, so no activation maps`);
    return [];
  }
  let dataset: InMemoryDataset | undefined = o.dataset;
  if (!dataset) {
    if (!(DATASETS as readonly string[]).includes(datasetName)) {
      assets.missing.push(`${runDir}: trained on "${datasetName}", which the report cannot load; pass { dataset } for activation maps`);
      return [];
    }
    dataset = datasets.get(datasetName);
    if (!dataset) {
      // The first 2,000 test images hold every class of MNIST and Fashion-MNIST many times over.
      dataset = loadDataset(datasetName as DatasetName, { dataDir: o.dataDir, limit: { train: 1, test: 2000 } });
      datasets.set(datasetName, dataset);
    }
  }
  const { renderActivations } = require('../viz/activations') as typeof import('../viz/activations');
  const model = loadModel(checkpoint, { mode: 'eager' });
  try {
    if (!model.layerNames().includes(o.layer)) {
      assets.missing.push(`${checkpoint}: has no layer ${o.layer} (layers: ${model.layerNames().join(', ')})`);
      return [];
    }
    return oneImagePerClass(dataset, model.classes).map(({ label, image }) => {
      const className = classNames[label] ?? dataset!.classNames[label] ?? String(label);
      const png = renderActivations(model, image, o.layer, { title: `${className}: ${o.layer}` });
      return { file: assets.write(png, folder, `activations-${label}-${className}.png`), caption: className };
    });
  } finally {
    model.dispose();
  }
}

function experimentBlocks(dir: string, assets: AssetStore): Block[] {
  const file = path.join(dir, RESULT_FILES.results);
  if (assets.locate(dir, file) !== 'inside') {
    assets.missing.push(`${file}: not found (is ${dir} an experiment folder?)`);
    return [{ kind: 'heading', level: 2, text: `Experiment ${dir}` }, { kind: 'text', text: `No ${RESULT_FILES.results} in ${dir}.` }];
  }
  const results = readJson(file) as ResultsFile;
  const folder = `experiment-${results.experiment}-${path.basename(path.resolve(dir))}`;
  const s = results.settings as Record<string, unknown>;
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: `Experiment: ${results.title}` },
    { kind: 'text', text: `Folder ${dir}; ${s.dataset}, ${s.trainImages} training / ${s.testImages} test images, ${s.epochs} epoch(s), seed ${s.seed}, measured ${s.date}.` },
    { kind: 'table', caption: 'Results', headers: results.table.headers, rows: results.table.rows },
    ...results.notes.filter((n) => n.trim() !== '').map((text): Block => ({ kind: 'text', text })),
  ];
  for (const group of groupFigures(results.figures)) {
    const figures = group.figures.flatMap((f) => {
      // f.file is named by results.json: resolved, and read only inside the experiment folder.
      const rel = assets.copy(dir, path.join(dir, f.file), folder);
      return rel ? [{ file: rel, caption: f.caption }] : [];
    });
    // Long series (e.g. seven kernel sizes) wrap so the page stays readable.
    if (figures.length > 0) blocks.push({ kind: 'figures', title: group.title, perRow: 4, figures });
  }
  return blocks;
}

/**
 * The kinds of probing folder, each known by its JSON file (read only inside the folder), with the
 * pictures it may hold and a caption for each.
 */
const EXPLANATION_KINDS: { json: string; kind: string; pictures: [string, string][] }[] = [
  { json: 'explain.json', kind: 'attribution maps', pictures: [['overlay.png', 'image, map and blend per image']] },
  { json: 'summary.json', kind: 'whole-split summary', pictures: [['classes.png', 'mean image and mean |attribution| per class'], ['confusion.png', 'mean |attribution| per confusion-matrix cell (rows: label, columns: prediction)']] },
  { json: 'across-training.json', kind: 'maps across training', pictures: [['across-training.png', '|map| per image (rows) and epoch (columns)']] },
  { json: 'visualize.json', kind: 'feature visualisation', pictures: [['mosaic.png', 'the image each unit responds to most']] },
  { json: 'examples.json', kind: 'dataset examples', pictures: [['examples.png', 'top images per channel'], ['crops.png', 'their receptive fields']] },
];

/** A probing folder's section: what it is (method, settings, images), its check's averages where there are some, its pictures. */
function explanationBlocks(dir: string, index: number, assets: AssetStore): Block[] {
  const name = path.basename(path.resolve(dir));
  const folder = `explanation-${index + 1}-${name}`;
  const heading: Block = { kind: 'heading', level: 2, text: `Explanation ${index + 1}: ${name}` };
  const found = EXPLANATION_KINDS.find((k) => assets.locate(dir, path.join(dir, k.json)) === 'inside');
  if (!found) {
    if (assets.locate(dir, path.join(dir, 'projector_config.pbtxt')) === 'inside') {
      return [heading, { kind: 'text', text: `Folder ${dir}: embeddings for TensorBoard's projector; view them with tensorboard --logdir ${dir}.` }];
    }
    assets.missing.push(`${dir}: no explain.json, summary.json, across-training.json, visualize.json, examples.json or projector_config.pbtxt (is it a probing folder?)`);
    return [heading, { kind: 'text', text: `No probing results in ${dir}.` }];
  }
  const json = readJson(path.join(dir, found.json)) as Record<string, unknown>;
  const about = ['method', 'layer', 'dataset', 'split', 'images', 'target', 'units', 'epochs']
    .filter((k) => json[k] !== undefined && json[k] !== null).map((k) => `${k} ${JSON.stringify(json[k])}`);
  const settings = json.settings && typeof json.settings === 'object' ? `; settings ${JSON.stringify(json.settings)}` : '';
  const blocks: Block[] = [heading, { kind: 'text', text: `Folder ${dir}: ${found.kind}; ${about.join(', ')}${settings}.` }];
  const faithfulness = path.join(dir, 'faithfulness.json');
  if (found.json === 'explain.json' && assets.locate(dir, faithfulness) === 'inside') {
    const f = readJson(faithfulness) as { mean?: Record<string, number> };
    if (f.mean) {
      blocks.push({
        kind: 'table', caption: 'Deletion and insertion AUCs (mean over the images; a faithful map: deletion below random, insertion above)',
        headers: ['', 'map order', 'random order'],
        rows: [['deletion', f.mean.deletion.toFixed(3), f.mean.randomDeletion.toFixed(3)], ['insertion', f.mean.insertion.toFixed(3), f.mean.randomInsertion.toFixed(3)]],
      });
    }
  }
  const figures = found.pictures.flatMap(([file, caption]) => {
    const at = path.join(dir, file);
    // A picture the JSON's kind may hold but this folder lacks (no node-canvas when it was written) is not an error.
    if (assets.locate(dir, at) !== 'inside') return [];
    const rel = assets.copy(dir, at, folder);
    return rel ? [{ file: rel, caption }] : [];
  });
  if (figures.length > 0) blocks.push({ kind: 'figures', perRow: 2, figures });
  return blocks;
}

const STYLE = `body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.label{text-align:left;font-weight:bold}table.figures td,table.figures th{text-align:center}
table.figures img{max-width:100%}caption{caption-side:top;text-align:left;font-weight:bold;padding:4px 0}`;

function htmlCell(c: Cell, tag = 'td'): string {
  if (typeof c === 'string') return `<${tag}>${escapeHtml(c)}</${tag}>`;
  if (c.header) return `<th>${escapeHtml(c.text)}</th>`;
  const style = c.shade !== undefined ? ` style="background:rgba(31,119,180,${(0.85 * c.shade).toFixed(3)})"` : '';
  return `<${tag}${style}>${escapeHtml(c.text)}</${tag}>`;
}

function chunk<T>(items: T[], size: number | undefined): T[][] {
  const n = size ?? items.length;
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

function dataUri(out: string, relative: string): string {
  const bytes = fs.readFileSync(path.join(out, relative));
  const mime = MIME[path.extname(relative).toLowerCase()] ?? 'application/octet-stream';
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

function toHtml(title: string, blocks: Block[], out: string): string {
  const img = (f: FigureRef) => `<img src="${dataUri(out, f.file)}" alt="${escapeHtml(f.caption)}" title="${escapeHtml(f.caption)}">`;
  const body = blocks.map((b) => {
    switch (b.kind) {
      case 'heading': return `<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`;
      case 'text': return `<p>${escapeHtml(b.text)}</p>`;
      case 'table': return `<table class="data">${b.caption ? `<caption>${escapeHtml(b.caption)}</caption>` : ''}` +
        `<thead><tr>${b.headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>` +
        `<tbody>${b.rows.map((r) => `<tr>${r.map((c) => htmlCell(c)).join('')}</tr>`).join('')}</tbody></table>`;
      case 'figures': {
        const caption = b.title ? `<caption>${escapeHtml(b.title)}</caption>` : '';
        const rows = chunk(b.figures, b.perRow).map((line) =>
          `<tr>${line.map((f) => `<th>${escapeHtml(f.caption)}</th>`).join('')}</tr><tr>${line.map((f) => `<td>${img(f)}</td>`).join('')}</tr>`).join('');
        return `<table class="figures">${caption}<tbody>${rows}</tbody></table>`;
      }
    }
  }).join('\n');
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>\n` +
    `<body><h1>${escapeHtml(title)}</h1>\n${body}\n</body></html>\n`;
}

function toMarkdown(title: string, blocks: Block[]): string {
  const table = (headers: string[], rows: string[][]) => markdownTable({ headers, rows });
  const img = (f: FigureRef) => `![${f.caption}](${f.file})`;
  const parts = [`# ${title}`];
  for (const b of blocks) {
    switch (b.kind) {
      case 'heading': parts.push(`${'#'.repeat(b.level)} ${b.text}`); break;
      case 'text': parts.push(b.text); break;
      case 'table': parts.push((b.caption ? `**${b.caption}**\n\n` : '') + table(b.headers, b.rows.map((r) => r.map(cellText)))); break;
      case 'figures': {
        // Markdown tables have one header row: the captions go into the cells under the pictures.
        const lines = chunk(b.figures, b.perRow);
        const width = lines[0].length;
        const pad = (cells: string[]) => [...cells, ...new Array<string>(width - cells.length).fill('')];
        const body = lines.length === 1
          ? table(b.figures.map((f) => f.caption), [b.figures.map(img)])
          : table(new Array<string>(width).fill(''), lines.map((line) => pad(line.map((f) => `${img(f)}<br>${f.caption}`))));
        parts.push((b.title ? `**${b.title}**\n\n` : '') + body);
        break;
      }
    }
  }
  return parts.join('\n\n') + '\n';
}

interface ResolvedReport {
  out: string;
  experiments: string[];
  explanations: string[];
  dataset?: InMemoryDataset;
  dataDir?: string;
  layer: string;
  title: string;
}

function resolveReport(runDirs: unknown, options: unknown): { runs: string[]; o: ResolvedReport } {
  if (!Array.isArray(runDirs)) throw new TypeError(expected('an array of run folders', 'runDirs', runDirs));
  const runs = runDirs.map((r, i) => checkString(r, `runDirs[${i}]`));
  const o = checkObject(options ?? {}, 'options');
  checkKnownKeys(o, 'buildReport options', ['out', 'experiments', 'dataset', 'dataDir', 'layer', 'title', 'explanations']);
  if (o.experiments !== undefined && !Array.isArray(o.experiments)) throw new TypeError(expected('an array of experiment folders', 'experiments', o.experiments));
  const experiments = ((o.experiments ?? []) as unknown[]).map((e, i) => checkString(e, `experiments[${i}]`));
  if (o.explanations !== undefined && !Array.isArray(o.explanations)) throw new TypeError(expected('an array of explanation folders', 'explanations', o.explanations));
  const explanations = ((o.explanations ?? []) as unknown[]).map((e, i) => checkString(e, `explanations[${i}]`));
  if (runs.length + experiments.length + explanations.length === 0) throw new RangeError('Expected at least one run, experiment or explanation folder for buildReport but received none');
  for (const dir of [...runs, ...experiments, ...explanations]) {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new RangeError(`Expected a folder for buildReport but ${dir} is not one`);
  }
  let dataset: InMemoryDataset | undefined;
  if (typeof o.dataset === 'object' && o.dataset !== null) dataset = o.dataset as InMemoryDataset;
  else if (o.dataset !== undefined) {
    const name = checkOneOf(o.dataset, 'dataset', DATASETS);
    dataset = loadDataset(name, { dataDir: o.dataDir as string | undefined, limit: { train: 1, test: 2000 } });
  }
  return {
    runs,
    o: {
      out: o.out === undefined ? 'report' : checkString(o.out, 'out'),
      experiments,
      explanations,
      dataset,
      dataDir: o.dataDir === undefined ? undefined : checkString(o.dataDir, 'dataDir'),
      layer: o.layer === undefined ? 'conv1.act' : checkString(o.layer, 'layer'),
      title: o.title === undefined ? 'convscope report' : checkString(o.title, 'title'),
    },
  };
}

/**
 * Builds one report of training runs (folders written by trainCnn with `runDir`) and experiment
 * folders: `<out>/report.html`, self-contained with every image embedded as a data: URI, and
 * `<out>/report.md` with the same content linking the images under `<out>/assets/`.
 *
 * Per run: the training history, the final conv1 mosaic, the GIF of the filters developing, the
 * curves, the confusion matrix as a table with class names, and the activation maps of `layer` for
 * the first test image of every class (computed from the run's model.pt). Per experiment: its
 * results table, notes and charts/mosaics. Per probing folder (`explanations`): what it holds,
 * its deletion/insertion averages where checked, its pictures. Pictures are laid out in tables. Anything missing is
 * left out and listed in `missing` rather than failing the report.
 * @example
 * const { html } = buildReport(['runs/2026-11-27T10-08-26-fashion-mnist-eager'], { out: 'report', experiments: ['experiments/sweep-kernel'] });
 */
export function buildReport(runDirs: string[], options: ReportOptions = {}): ReportResult {
  const { runs, o } = resolveReport(runDirs, options);
  const assets = new AssetStore(o.out);
  const datasets = new Map<string, InMemoryDataset>();
  const blocks: Block[] = [];
  runs.forEach((dir, i) => blocks.push(...runBlocks(dir, i, assets, o, datasets)));
  for (const dir of o.experiments) blocks.push(...experimentBlocks(dir, assets));
  o.explanations.forEach((dir, i) => blocks.push(...explanationBlocks(dir, i, assets)));
  if (assets.missing.length > 0) {
    blocks.push({ kind: 'heading', level: 2, text: 'Not shown' }, ...assets.missing.map((m): Block => ({ kind: 'text', text: m })));
  }
  const html = path.join(o.out, REPORT_FILES.html);
  const markdown = path.join(o.out, REPORT_FILES.markdown);
  writeFileAtomic(html, toHtml(o.title, blocks, o.out));
  writeFileAtomic(markdown, toMarkdown(o.title, blocks));
  return { html, markdown, assets: assets.written, missing: assets.missing };
}
