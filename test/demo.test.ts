// The browser demo in Debian's headless Chromium: the page loads the exported ONNX model with
// onnxruntime-web, classifies the 20 test images it shows, and gets predict's classes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, defaultSpec, trainCnn } from '../src/index';
import { DEMO_SAMPLES, prepareDemoFolder, startDemoServer } from '../src/demo/demo-server';
import { CLASS_NAMES } from '../src/data/datasets';
import { fashion } from './fixtures';
import { skipBecause } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const available = fs.existsSync(CHROMIUM);
if (!available) skipBecause(`${CHROMIUM} is not installed (apt-get install chromium); the browser demo test did not run`);
// Chromium as the project's machines allow it: no sandbox as root, no background network.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-demo-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function argmaxRows(probs: Float32Array, classes: number): number[] {
  return Array.from({ length: probs.length / classes }, (_, r) => {
    const row = Array.from(probs.subarray(r * classes, (r + 1) * classes));
    return row.indexOf(Math.max(...row));
  });
}

describe('npm run demo', () => {
  test('the server serves the page, the model folder and the runtime, and nothing else', async () => {
    const model = createModel(defaultSpec(), { seed: 41 });
    const dir = path.join(tmp, 'served');
    prepareDemoFolder(model, dir, fashion().test, CLASS_NAMES['fashion-mnist']);
    model.dispose();
    const server = await startDemoServer(dir, { port: 0 });
    try {
      const get = async (p: string) => (await fetch(new URL(p, server.url))).status;
      for (const p of ['/', '/demo.js', '/model/model.onnx', '/model/samples.json', '/ort/ort.wasm.min.js', '/ort/ort-wasm-simd-threaded.wasm']) expect([p, await get(p)]).toEqual([p, 200]);
      for (const p of ['/../package.json', '/model/../../package.json', '/ort/ort.node.min.js', '/nope']) expect([p, await get(p)]).toEqual([p, 404]);
    } finally {
      await server.close();
    }
  });

  (available ? test : test.skip)('in Chromium the page classifies its 20 test images as predict does', async () => {
    const { model } = await trainCnn({ dataset: fashion(), limit: 2000, testLimit: 200, epochs: 1, mode: 'script', seed: 42 });
    const dir = path.join(tmp, 'browser');
    const test = fashion().test;
    prepareDemoFolder(model, dir, test, CLASS_NAMES['fashion-mnist']);
    const expected = argmaxRows(model.predict(test.images.subarray(0, DEMO_SAMPLES * 784)), 10);
    model.dispose();
    const server = await startDemoServer(dir, { port: 0 });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.evaluate(() => (window as unknown as { convscopeDemo: { ready: Promise<void> } }).convscopeDemo.ready);
      const classes = await page.evaluate(() => (window as unknown as { convscopeDemo: { classifySamples(): Promise<number[]> } }).convscopeDemo.classifySamples());
      expect(classes).toEqual(expected);
      // What a person does: click a test image and read the top class.
      await page.click('#samples canvas:nth-child(1)');
      await page.waitForSelector('#probabilities li.top');
      expect(await page.textContent('#probabilities li.top span')).toBe(CLASS_NAMES['fashion-mnist'][expected[0]]);
      expect(await page.$eval('#filters', (img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
      await page.screenshot({ path: path.join(os.tmpdir(), 'convscope-demo.png') });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
