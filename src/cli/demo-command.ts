// `convscope demo`: serves the browser demo for a checkpoint (by default the newest run's, else a
// model trained on the spot for one quick epoch) until Ctrl-C.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, Option } from 'commander';
import { parseInteger } from './train-command';

/** runs/<newest>/model.pt, or undefined when there is no run. */
function newestRunCheckpoint(runs: string): string | undefined {
  if (!fs.existsSync(runs)) return undefined;
  return fs.readdirSync(runs).map((name) => path.join(runs, name, 'model.pt')).filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

export function addDemoCommand(program: Command): void {
  program.command('demo')
    .description('serve a page that classifies drawings and test images with the exported ONNX model in the browser (onnxruntime-web)')
    .option('--checkpoint <file>', 'the model (default: the newest runs/*/model.pt, else one trained now for an epoch)')
    .addOption(new Option('--dataset <name>', 'where the test images and class names come from').choices(['fashion-mnist', 'mnist']).default('fashion-mnist'))
    .option('--port <n>', 'port on 127.0.0.1', parseInteger, 8080)
    .option('--runs <dir>', 'where runs are', 'runs')
    .action(async (flags: { checkpoint?: string; dataset: 'fashion-mnist' | 'mnist'; port: number; runs: string }) => {
      const { loadDataset, loadModel, trainCnn } = require('../index') as typeof import('../index');
      const { prepareDemoFolder, startDemoServer } = require('../demo/demo-server') as typeof import('../demo/demo-server');
      const data = loadDataset(flags.dataset);
      const checkpoint = flags.checkpoint ?? newestRunCheckpoint(flags.runs);
      let model;
      if (checkpoint) {
        process.stderr.write(`demo: serving ${checkpoint}\n`);
        model = loadModel(checkpoint);
      } else {
        process.stderr.write(`demo: no run in ${flags.runs}; training a model for one epoch on 10,000 images first\n`);
        model = (await trainCnn({ dataset: flags.dataset, epochs: 1, limit: 10000, testLimit: 1000, mode: 'script' })).model;
      }
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-demo-'));
      try {
        prepareDemoFolder(model, dir, data.test, data.classNames);
      } finally {
        model.dispose();
      }
      const server = await startDemoServer(dir, { port: flags.port });
      process.stdout.write(`demo: open ${server.url} (Ctrl-C stops)\n`);
      process.once('SIGINT', () => { void server.close().then(() => fs.rmSync(dir, { recursive: true, force: true })); });
    });
}
