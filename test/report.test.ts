// buildReport / `convscope report`: the Markdown copy links files that exist, the HTML page needs
// nothing but itself, and in a real headless browser (Debian's chromium through playwright-core)
// every image decodes and every table is there.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildReport, sweepKernelSizes, trainCnn } from '../src/index';
import { buildProgram } from '../src/cli/main';
import { CLASS_NAMES } from '../src/data/datasets';
import { fashion, smallSpec } from './fixtures';
import { testIfInstalled, thrown } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const runDir = path.join(tmp, 'run');
const experimentDir = path.join(tmp, 'sweep');
const out = path.join(tmp, 'report');

beforeAll(async () => {
  const run = await trainCnn({ dataset: fashion(), spec: smallSpec(), limit: 512, testLimit: 256, epochs: 2, runDir, mode: 'script' });
  run.model.dispose();
  await sweepKernelSizes({ dataset: fashion(), spec: smallSpec(), sizes: [3, 7], limit: 256, testLimit: 128, outDir: experimentDir });
});

describe('buildReport', () => {
  test('writes a self-contained HTML page and a Markdown copy whose images exist', () => {
    const r = buildReport([runDir], { out, experiments: [experimentDir] });
    expect(r.missing).toEqual([]);
    const html = fs.readFileSync(r.html, 'utf8');
    // Self-contained: every image is a data: URI, nothing refers to a file or the network.
    const sources = [...html.matchAll(/<img src="([^"]*)"/g)].map((m) => m[1]);
    expect(sources.length).toBe(r.assets.length);
    expect(sources.every((s) => /^data:image\/(png|gif);base64,/.test(s))).toBe(true);
    expect(html).toContain('data:image/gif;base64,'); // the filters' evolution
    const markdown = fs.readFileSync(r.markdown, 'utf8');
    const links = [...markdown.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBe(r.assets.length);
    for (const link of links) expect(fs.existsSync(path.join(out, link))).toBe(true);
    // One activation picture per class, the confusion matrix with class names, the experiment's table.
    expect(links.filter((l) => /activations-/.test(l))).toHaveLength(10);
    for (const name of CLASS_NAMES['fashion-mnist']) expect(markdown).toContain(`| ${name} |`);
    expect(markdown).toMatch(/\| kernel size \| test accuracy \|/);
    expect(markdown).toMatch(/\| 7x7 \| \d+\.\d\d% \|/);
  });

  test('missing pictures are listed instead of failing the report; bad input is rejected', () => {
    const bare = path.join(tmp, 'bare-run');
    fs.mkdirSync(bare, { recursive: true });
    fs.copyFileSync(path.join(runDir, 'history.json'), path.join(bare, 'history.json'));
    const r = buildReport([bare], { out: path.join(tmp, 'bare-report') });
    expect(r.missing.some((m) => m.includes('model.pt'))).toBe(true);
    expect(fs.readFileSync(r.html, 'utf8')).toContain('Not shown');
    expect(thrown(() => buildReport([])).name).toBe('RangeError');
    expect(thrown(() => buildReport([path.join(tmp, 'nowhere')])).message).toMatch(/nowhere/);
    expect(thrown(() => buildReport('run' as never)).name).toBe('TypeError');
    expect(thrown(() => buildReport([runDir], { outDir: 'x' } as never)).message).toMatch(/outDir/);
  });

  test('the command writes the same report', async () => {
    const cliOut = path.join(tmp, 'report-cli');
    let printed = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed += String(chunk);
      return true;
    });
    try {
      await buildProgram().exitOverride().parseAsync(['node', 'convscope', 'report', runDir, '--experiments', experimentDir, '--out', cliOut]);
    } finally {
      write.mockRestore();
    }
    expect(printed).toContain(path.join(cliOut, 'report.html'));
    expect(fs.readFileSync(path.join(cliOut, 'report.md'), 'utf8')).toBe(fs.readFileSync(path.join(out, 'report.md'), 'utf8'));
  });
});

describe('the report in headless chromium', () => {
  const testInChromium = testIfInstalled(fs.existsSync(CHROMIUM), `${CHROMIUM} is not installed (apt-get install chromium); the browser check of the report did not run`);
  testInChromium('every image decodes and the tables are present', async () => {
    if (!fs.existsSync(path.join(out, 'report.html'))) buildReport([runDir], { out, experiments: [experimentDir] });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(`file://${path.join(out, 'report.html')}`, { waitUntil: 'load' });
      const images = await page.$$eval('img', (els) => els.map((e) => ({ width: (e as HTMLImageElement).naturalWidth, alt: (e as HTMLImageElement).alt })));
      expect(images.length).toBeGreaterThanOrEqual(16); // 3 run pictures + 10 activation maps + the sweep's chart and 2 mosaics
      for (const image of images) expect({ alt: image.alt, decoded: image.width > 0 }).toEqual({ alt: image.alt, decoded: true });
      const captions = await page.$$eval('table caption', (els) => els.map((e) => e.textContent ?? ''));
      expect(captions).toEqual(expect.arrayContaining(['Training history', 'Results']));
      expect(captions.some((c) => c.startsWith('Confusion matrix'))).toBe(true);
      const confusionHeaders = await page.$$eval('table.data thead th', (els) => els.map((e) => e.textContent));
      expect(confusionHeaders).toEqual(expect.arrayContaining(['Trouser', 'Ankle boot', 'kernel size']));
      // No request ever left the page: it is self-contained.
      const external = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => !n.startsWith('data:')));
      expect(external).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
