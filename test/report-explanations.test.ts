// The report's section for probing folders (buildReport's `explanations`): each kind of folder is
// recognised by its JSON and shown with its pictures (embedded in the HTML, linked in the Markdown)
// and its settings, an explain folder's deletion/insertion averages as a table; a picture that is a
// link out of its folder is not read and is listed, as for runs and experiments; a folder that is
// no probing folder is listed, never a failure.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildReport, createModel, explain, writeExplanation } from '../src/index';
import { maximize } from '../src/probe/maximize';
import { attributionSummary, writeSummary } from '../src/probe/summary';
import { writeVisualisation } from '../src/probe/probe-folders';
import { fashion } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-report-explanations-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const N = 784;

const dirs = { explain: path.join(tmp, 'explain-saliency'), summary: path.join(tmp, 'summary'), viz: path.join(tmp, 'viz'), other: path.join(tmp, 'other'), hostile: path.join(tmp, 'hostile') };

beforeAll(async () => {
  const model = createModel({ conv: [{ filters: 4, kernelSize: 3, pool: true }], dense: [8], dropout: 0 }, { seed: 5 });
  const images = fashion().test.images.subarray(0, 4 * N);
  const pixels = Float32Array.from(images, (v) => v / 255);
  writeExplanation(dirs.explain, await explain(model, images, { method: 'saliency' }), { indices: [0, 1, 2, 3], pixels });
  fs.writeFileSync(path.join(dirs.explain, 'faithfulness.json'), JSON.stringify({ mean: { deletion: 0.25, randomDeletion: 0.5, insertion: 0.75, randomInsertion: 0.5 } }));
  writeSummary(dirs.summary, await attributionSummary(model, images, fashion().test.labels.subarray(0, 4)), {}, fashion().classNames);
  writeVisualisation(dirs.viz, await maximize(model, { layer: 'conv1', channel: [0, 1] }, { steps: 2 }));
  fs.mkdirSync(dirs.other);
  // A visualisation folder whose picture is a link to a file outside it.
  writeVisualisation(dirs.hostile, await maximize(model, { class: 1 }, { steps: 1 }));
  const secret = path.join(tmp, 'secret.png');
  fs.writeFileSync(secret, 'not for the report');
  fs.rmSync(path.join(dirs.hostile, 'mosaic.png'));
  fs.symlinkSync(secret, path.join(dirs.hostile, 'mosaic.png'));
  model.dispose();
});

test('each probing folder gets a section with its settings and pictures; the others are listed, the link out is not read', () => {
  const out = path.join(tmp, 'report');
  const r = buildReport([], { out, explanations: [dirs.explain, dirs.summary, dirs.viz, dirs.other, dirs.hostile] });
  const html = fs.readFileSync(r.html, 'utf8');
  const md = fs.readFileSync(r.markdown, 'utf8');
  expect(md).toMatch(/## Explanation 1: explain-saliency\n\nFolder .*explain-saliency: attribution maps; method "saliency"/);
  expect(md).toMatch(/\*\*Deletion and insertion AUCs[^*]*\*\*\n\n\| *\| map order \| random order \|/);
  expect(md).toMatch(/\| deletion \| 0\.250 \| 0\.500 \|/);
  expect(md).toMatch(/## Explanation 2: summary\n\nFolder .*: whole-split summary; method "saliency"/);
  expect(md).toMatch(/## Explanation 3: viz\n\nFolder .*: feature visualisation; layer "conv1", units \[0,1\]/);
  for (const picture of ['overlay.png', 'classes.png', 'confusion.png', 'mosaic.png']) expect(md).toContain(picture);
  expect(r.assets.map((a) => path.basename(a))).toEqual(['overlay.png', 'classes.png', 'confusion.png', 'mosaic.png']);
  expect((html.match(/<img src="data:image\/png;base64,/g) ?? []).length).toBe(4);
  expect(r.missing).toEqual([
    `${dirs.other}: no explain.json, summary.json, across-training.json, visualize.json, examples.json or projector_config.pbtxt (is it a probing folder?)`,
    expect.stringMatching(/mosaic\.png lies outside .*hostile \(it resolves to .*secret\.png\); only files inside the folder are read: not read$/),
  ]);
  expect(html).not.toContain(Buffer.from('not for the report').toString('base64'));
});

test('a bad explanations option is refused', () => {
  expect(() => buildReport([], { explanations: 'x' as never })).toThrow(/^Expected an array of explanation folders for explanations but received "x" of type string$/);
  expect(() => buildReport([], { explanations: [path.join(tmp, 'absent')] })).toThrow(/is not one$/);
});
