// `convscope demo`: serves the browser demo for a checkpoint (by default the newest run's, else a
// model trained on the spot for one quick epoch) until Ctrl-C.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseInteger } from './train-command';

/** The highest TCP port. */
const MAX_PORT = 65535;

/** --port: an integer in [0, 65535], checked when the flags are parsed, before any other work (0: any free port). */
export function parsePort(value: string): number {
  const port = parseInteger(value);
  if (port < 0 || port > MAX_PORT) throw new InvalidArgumentError(`expected a port in [0, ${MAX_PORT}] but received "${value}"`);
  return port;
}

/** Exit codes of a process ended by a signal, as shells report them (128 + the signal's number). */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

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
    .option('--port <n>', 'port on 127.0.0.1 (0: any free port)', parsePort, 8080)
    .option('--runs <dir>', 'where runs are', 'runs')
    .action(async (flags: { checkpoint?: string; dataset: 'fashion-mnist' | 'mnist'; port: number; runs: string }) => {
      const { prepareDemoFolder, startDemoServer } = require('../demo/demo-server') as typeof import('../demo/demo-server');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-demo-'));
      let server: import('../demo/demo-server').DemoServer | undefined;
      const removeFolder = (): void => fs.rmSync(dir, { recursive: true, force: true });
      // Ctrl-C or a TERM ends the process at once, whatever it is doing (training, exporting, serving
      // a client that holds a half-sent request), and the temporary folder goes with it.
      const onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
        void server?.close();
        removeFolder();
        process.exit(SIGNAL_EXIT_CODES[signal]);
      };
      for (const signal of Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[]) process.once(signal, onSignal);
      try {
        // Listening first: a port in use fails now, not after the export.
        server = await startDemoServer(dir, { port: flags.port });
        const { loadDataset, loadModel, trainCnn } = require('../index') as typeof import('../index');
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
        try {
          prepareDemoFolder(model, dir, data.test, data.classNames);
        } finally {
          model.dispose();
        }
      } catch (err) {
        for (const signal of Object.keys(SIGNAL_EXIT_CODES)) process.removeListener(signal, onSignal);
        await server?.close();
        removeFolder();
        throw err;
      }
      process.stdout.write(`demo: open ${server.url} (Ctrl-C stops)\n`);
    });
}
