// node-canvas is optional: no module under src/ may load it (or Chart.js) at import time, and a
// missing canvas must surface as one actionable error at draw time while training-side code works.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const SRC = path.join(__dirname, '..', 'src');
const DRAWING_PACKAGES = ['canvas', 'chartjs-node-canvas', 'chart.js', 'chart.js/auto'];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

test('no file under src/ imports canvas, chartjs-node-canvas or chart.js at top level (type imports are fine)', () => {
  const offenders: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const pkg of DRAWING_PACKAGES) {
      const quoted = `['"]${pkg.replace('.', '\\.')}['"]`;
      const valueImport = new RegExp(`^\\s*import\\s+(?!type\\b)[^;]*from\\s+${quoted}`, 'm');
      const sideEffectImport = new RegExp(`^\\s*import\\s+${quoted}`, 'm');
      const topLevelRequire = new RegExp(`^(const|let|var|import)\\b[^\\n]*require\\(${quoted}\\)`, 'm');
      if (valueImport.test(text) || sideEffectImport.test(text) || topLevelRequire.test(text)) {
        offenders.push(`${path.relative(SRC, file)} (${pkg})`);
      }
    }
  }
  expect(offenders).toEqual([]);
});

describe('when node-canvas cannot load', () => {
  beforeEach(() => {
    jest.resetModules();
    jest.doMock('canvas', () => {
      throw new Error('libcairo.so.2: cannot open shared object file: No such file or directory');
    });
  });
  afterEach(() => {
    jest.dontMock('canvas');
    jest.resetModules();
  });

  test('viz and summary modules still import, and drawing throws an actionable error', () => {
    const mosaic = require('../src/viz/mosaic') as typeof import('../src/viz/mosaic');
    require('../src/viz/charts');
    require('../src/viz/gif');
    const { SummaryWriter } = require('../src/summary/writer') as typeof import('../src/summary/writer');

    const weights = { data: new Float32Array(9), shape: [1, 1, 3, 3] };
    let message = '';
    try {
      mosaic.renderFilterMosaic(weights);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/needs node-canvas/);
    expect(message).toMatch(/libcairo\.so\.2/);
    expect(message).toContain('build-essential pkg-config libcairo2-dev libpango1.0-dev libjpeg-dev libgif-dev librsvg2-dev');
    expect(message).toContain('npm rebuild canvas');
    // Pure layout needs no canvas, and neither does writing TensorBoard scalars.
    expect(mosaic.layoutFilterMosaic([1, 1, 3, 3]).tiles).toHaveLength(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-nocanvas-'));
    const writer = new SummaryWriter(dir);
    writer.addScalar('loss', 1, 0);
    writer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('charts reject with the same message', async () => {
    const charts = require('../src/viz/charts') as typeof import('../src/viz/charts');
    await expect(
      charts.renderTrainingCurves([{ epoch: 1, trainLoss: 1, trainAccuracy: 0.5, testLoss: 1, testAccuracy: 0.5 }]),
    ).rejects.toThrow(/npm rebuild canvas/);
  });
});
