// The browser demo in Debian's headless Chromium: the page loads the exported ONNX model with
// onnxruntime-web, classifies the 20 test images it shows, and gets predict's classes.
import * as fs from 'fs';
import * as os from 'os';
import * as net from 'net';
import * as path from 'path';
import { spawn } from 'child_process';
import { createModel, defaultSpec, trainCnn } from '../src/index';
import { DEMO_SAMPLES, prepareDemoFolder, startDemoServer } from '../src/demo/demo-server';
import { CLASS_NAMES } from '../src/data/datasets';
import { fashion } from './fixtures';
import { skipBecause, testIfInstalled } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const testInChromium = testIfInstalled(fs.existsSync(CHROMIUM), `${CHROMIUM} is not installed (apt-get install chromium); the browser demo test did not run`);
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
      // Only this machine's clients reach it (the CLI passes no host).
      expect(new URL(server.url).hostname).toBe('127.0.0.1');
      const get = async (p: string) => (await fetch(new URL(p, server.url))).status;
      for (const p of ['/', '/demo.js', '/model/model.onnx', '/model/samples.json', '/ort/ort.wasm.min.js', '/ort/ort-wasm-simd-threaded.wasm']) expect([p, await get(p)]).toEqual([p, 200]);
      for (const p of ['/../package.json', '/model/../../package.json', '/ort/ort.node.min.js', '/nope']) expect([p, await get(p)]).toEqual([p, 404]);
    } finally {
      await server.close();
    }
  });

  testInChromium('in Chromium the page classifies its 20 test images as predict does', async () => {
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

/** Sends `text` as it is over a TCP connection and returns the answer's status line ('' when none came within 3 s). */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => { socket.destroy(); resolve(answer.split('\r\n')[0]); }, 3000);
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk) => { answer += chunk.toString('latin1'); });
    socket.on('close', () => { clearTimeout(timer); resolve(answer.split('\r\n')[0]); });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

describe('what a client sends cannot stop the demo server (issue 34 #6)', () => {
  test('malformed requests get a 4xx answer, and the server answers the next request', async () => {
    const model = createModel(defaultSpec(), { seed: 41 });
    const dir = path.join(tmp, 'malformed');
    prepareDemoFolder(model, dir, fashion().test, CLASS_NAMES['fashion-mnist']);
    model.dispose();
    const server = await startDemoServer(dir, { port: 0 });
    const port = Number(new URL(server.url).port);
    try {
      const cases: [string, RegExp][] = [
        ['GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['GET //evil.example/x HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['GET * HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['GET /%zz%ff HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 404 /],
        ['POST /demo.js HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc', /^HTTP\/1\.1 405 /],
        ['DELETE /model/model.onnx HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 405 /],
        ['NONSENSE\r\n\r\n', /^HTTP\/1\.1 400 /],
        ['GET / HTTP/1.1\r\nBad Header\r\n\r\n', /^HTTP\/1\.1 400 /],
      ];
      for (const [request, status] of cases) {
        expect([request, await rawRequest(port, request)]).toEqual([request, expect.stringMatching(status)]);
        expect((await fetch(server.url)).status).toBe(200);
      }
    } finally {
      await server.close();
    }
  });
});

describe('convscope demo ends at once and leaves nothing behind (issue 34 #7)', () => {
  const cli = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
  const built = fs.existsSync(cli);
  if (!built) skipBecause(`${cli} is not built (npx tsc -p tsconfig.json); the demo command tests did not run`);
  const cliTest = built ? test : test.skip;
  let checkpoint: string;
  beforeAll(() => {
    checkpoint = path.join(tmp, 'demo-model.pt');
    const model = createModel(defaultSpec(), { seed: 5 });
    model.save(checkpoint);
    model.dispose();
  });

  /** The demo command in a child whose temporary folders go into a folder of their own. */
  function startDemo(args: string[]): { child: import('child_process').ChildProcess; tmpdir: string; output: () => string; exited: Promise<{ code: number | null; signal: string | null; ms: number }> } {
    const tmpdir = fs.mkdtempSync(path.join(tmp, 'tmpdir-'));
    const started = Date.now();
    const child = spawn(process.execPath, [cli, 'demo', '--checkpoint', checkpoint, ...args], { env: { ...process.env, TMPDIR: tmpdir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => { output += d; });
    child.stderr!.on('data', (d) => { output += d; });
    const exited = new Promise<{ code: number | null; signal: string | null; ms: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - started })));
    return { child, tmpdir, output: () => output, exited };
  }

  async function waitFor(what: () => RegExpMatchArray | null, ms: number): Promise<RegExpMatchArray> {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const found = what();
      if (found) return found;
    }
    throw new Error('timed out');
  }

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    cliTest(`${signal} while a client holds a half-sent request: the process ends at once (${code}) and removes its temporary folder`, async () => {
      const demo = startDemo(['--port', '0']);
      try {
        const [, port] = await waitFor(() => demo.output().match(/demo: open http:\/\/127\.0\.0\.1:(\d+)\//), 60000);
        expect(fs.readdirSync(demo.tmpdir)).toEqual([expect.stringMatching(/^convscope-demo-/)]);
        const socket = net.connect(Number(port), '127.0.0.1');
        await new Promise((r) => socket.on('connect', r));
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
        socket.on('error', () => undefined);
        await new Promise((r) => setTimeout(r, 200));
        const signalled = Date.now();
        demo.child.kill(signal);
        let timer: NodeJS.Timeout | undefined;
        const { code: exitCode, signal: killedBy } = await Promise.race([
          demo.exited, new Promise<{ code: null; signal: string }>((r) => { timer = setTimeout(() => r({ code: null, signal: 'still running after 5 s' }), 5000); }),
        ]).finally(() => clearTimeout(timer));
        expect({ exitCode, killedBy }).toEqual({ exitCode: code, killedBy: null });
        expect(Date.now() - signalled).toBeLessThan(5000);
        expect(fs.readdirSync(demo.tmpdir)).toEqual([]);
        socket.destroy();
      } finally {
        demo.child.kill('SIGKILL');
      }
    }, 90000);
  }

  cliTest('a bad --port is refused before any work, naming the flag, and leaves no temporary folder', async () => {
    for (const port of ['99999', '-1', 'http']) {
      const demo = startDemo(['--port', port]);
      const { code } = await demo.exited;
      expect(code).not.toBe(0);
      expect(demo.output()).toMatch(/--port/);
      expect(demo.output()).not.toMatch(/demo: serving/);
      expect(fs.readdirSync(demo.tmpdir)).toEqual([]);
    }
  }, 60000);

  cliTest('a port in use: the start fails before the export, and no temporary folder is left', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    try {
      const demo = startDemo(['--port', String((blocker.address() as net.AddressInfo).port)]);
      const { code } = await demo.exited;
      expect(code).toBe(1);
      expect(demo.output()).toMatch(/EADDRINUSE/);
      expect(demo.output()).not.toMatch(/demo: serving/);
      expect(fs.readdirSync(demo.tmpdir)).toEqual([]);
    } finally {
      blocker.close();
    }
  }, 60000);
});
