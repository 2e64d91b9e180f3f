// The browser demo's two halves on the Node side: the model folder the page reads (the ONNX export,
// 20 test images, the class names, the first-layer filters) and a static file server (Node's http,
// no framework) for the page in demo/, that folder and onnxruntime-web's WebAssembly runtime.
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { packageRoot } from '../util/package-root';
import type { CnnModel } from '../nn/model';
import type { Split } from '../data/datasets';
import { renderFilterMosaic } from '../viz/mosaic';
import { writeFileAtomic } from '../util/fs-atomic';

export const DEMO_SAMPLES = 20;

/** Writes model.onnx, samples.json, meta.json and filters.png into `dir` for the page. */
export function prepareDemoFolder(model: CnnModel, dir: string, test: Split, classNames: readonly string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  model.exportOnnx(path.join(dir, 'model.onnx'));
  const count = Math.min(DEMO_SAMPLES, test.count);
  const [h, w] = model.inputSize;
  const c = model.inputChannels;
  if (test.channels !== c) throw new RangeError(`Expected ${c}-channel test images (the model's) for the demo but the dataset has ${test.channels}-channel images`);
  // The page takes bytes, channel-planar (N x C x H x W): float images in [0, 1] are rounded to 0..255.
  const values = test.images.subarray(0, count * c * h * w);
  const images = values instanceof Uint8Array ? Buffer.from(values.buffer, values.byteOffset, values.length) : Buffer.from(Uint8Array.from(values, (v) => Math.round(v * 255)));
  writeFileAtomic(path.join(dir, 'samples.json'), JSON.stringify({ count, labels: Array.from(test.labels.subarray(0, count)), images: images.toString('base64') }));
  // Counted from the plan: parameters() copies every weight to the host.
  const description = `${model.plan.conv.length + model.plan.dense.length} layers with weights, ${model.classes} classes, input ${c === 1 ? '' : `${c}x`}${h}x${w}`;
  writeFileAtomic(path.join(dir, 'meta.json'), JSON.stringify({
    inputSize: model.inputSize, inputChannels: c, classes: model.classes, classNames, inputNorm: model.inputNorm, description,
  }));
  const conv1 = model.parameters().find((p) => p.name === 'conv1.weight')!;
  writeFileAtomic(path.join(dir, 'filters.png'), renderFilterMosaic({ data: conv1.values, shape: conv1.shape }, { colormap: 'RdBu' }));
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.onnx': 'application/octet-stream', '.wasm': 'application/wasm',
};

/** onnxruntime-web's files the page loads (the WebAssembly build only), or a clear error if absent. */
function onnxruntimeWebDir(): string {
  // Its exports map hides dist/; its Node entry point lives there beside the browser files.
  let dir: string;
  try {
    dir = path.dirname(require.resolve('onnxruntime-web', { paths: [packageRoot()] }));
  } catch {
    throw new Error('the demo needs the npm package onnxruntime-web (npm install onnxruntime-web)');
  }
  if (!fs.existsSync(path.join(dir, 'ort.wasm.min.js'))) throw new Error(`onnxruntime-web at ${dir} has no ort.wasm.min.js; expected version 1.30`);
  return dir;
}

/** The only files served: the page, the model folder's four files, onnxruntime-web's runtime. */
function routes(modelDir: string): Map<string, string> {
  const page = path.join(packageRoot(), 'demo');
  const ort = onnxruntimeWebDir();
  const table = new Map<string, string>([['/', path.join(page, 'index.html')]]);
  for (const f of ['index.html', 'demo.js', 'demo.css']) table.set(`/${f}`, path.join(page, f));
  for (const f of ['model.onnx', 'samples.json', 'meta.json', 'filters.png']) table.set(`/model/${f}`, path.join(modelDir, f));
  for (const f of ['ort.wasm.min.js', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs']) table.set(`/ort/${f}`, path.join(ort, f));
  return table;
}

export interface DemoServer {
  url: string;
  /** Stops listening and ends every connection at once (a client holding a half-sent request included). */
  close(): Promise<void>;
}

/**
 * The path of a request's target (`/model/meta.json?x` -> `/model/meta.json`), or undefined when it
 * is not an origin-form path a browser would send (`//[`, `*`, `http://host/...`, bad escapes).
 */
export function requestPath(target: string | undefined): string | undefined {
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    return new URL(target, 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function answer(response: http.ServerResponse, status: number, text: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${text}\n`);
}

/**
 * Serves the demo on `host:port` (port 0: any free port); resolves once it listens, rejects when it
 * cannot (a port in use). Nothing a client sends stops the server: a request that is not a plain
 * GET of a known path is answered with a 4xx status.
 */
export function startDemoServer(modelDir: string, options: { port?: number; host?: string } = {}): Promise<DemoServer> {
  const table = routes(modelDir);
  const server = http.createServer((request, response) => {
    try {
      const target = requestPath(request.url);
      if (target === undefined) return answer(response, 400, 'bad request');
      const file = table.get(target);
      if (!file) return answer(response, 404, 'not found');
      if (request.method !== 'GET' && request.method !== 'HEAD') return answer(response, 405, 'method not allowed');
      fs.readFile(file, (err, body) => {
        if (err) answer(response, 500, 'the file could not be read');
        else response.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(request.method === 'HEAD' ? undefined : body);
      });
    } catch {
      // Whatever a request makes throw ends that request, never the server.
      answer(response, 400, 'bad request');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      server.removeListener('error', reject);
      // After listening, an error of the server itself (not of one connection) is reported, not thrown.
      server.on('error', (err) => process.emitWarning(`convscope demo server: ${err.message}`));
      const { address, port } = server.address() as AddressInfo;
      resolve({
        url: `http://${address}:${port}/`,
        close: () => new Promise((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
