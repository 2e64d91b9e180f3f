// `convscope train`: trainCnn with a progress bar per epoch, a summary table, and a run folder.
import { Command, InvalidArgumentError } from 'commander';
import { claimRunFolder, removeIfEmpty, runFolderName } from '../train/run-recorder';
import type { TrainOptions, TrainProgress } from '../train/options';
import { DEFAULT_DIST_TIMEOUT_SECONDS, DistributedOptions, ENV_INIT_METHOD, inGroupEnvironment, rankEnvironment, storeFileOf } from '../distributed/environment';
import { launchLocalRanks, withoutFlag } from '../distributed/launcher';

/** --nproc-per-node: this command line again, once per rank, without the flag; the exit code of the group. */
async function launchRanks(ranks: number): Promise<number> {
  if (!Number.isInteger(ranks) || ranks < 1) throw new InvalidArgumentError(`--nproc-per-node: expected a positive integer but received ${ranks}`);
  if (inGroupEnvironment()) {
    throw new InvalidArgumentError('--nproc-per-node: this process is already a rank (RANK and WORLD_SIZE are set, as torchrun sets them); leave the flag out under torchrun');
  }
  const args = withoutFlag(process.argv.slice(2), '--nproc-per-node');
  const { code } = await launchLocalRanks({ ranks, command: [process.execPath, ...process.execArgv, process.argv[1], ...args] });
  return code;
}

/** The run's distributed options: a group when torchrun's environment (or the launcher's) describes one. */
function distributedFlags(timeout: number | undefined, initMethod: string | undefined, syncBatchNorm: boolean | undefined): Required<DistributedOptions> | undefined {
  if (!inGroupEnvironment()) {
    if (timeout !== undefined) throw new InvalidArgumentError('--dist-timeout: only for distributed runs (under torchrun or with --nproc-per-node)');
    if (initMethod !== undefined) throw new InvalidArgumentError('--dist-init-method: only for distributed runs (under torchrun or with --nproc-per-node)');
    if (syncBatchNorm !== undefined) throw new InvalidArgumentError('--sync-batch-norm: only for distributed runs (under torchrun or with --nproc-per-node)');
    return undefined;
  }
  if (initMethod !== undefined) {
    try {
      storeFileOf(initMethod, '--dist-init-method');
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  }
  return { timeout: timeout ?? DEFAULT_DIST_TIMEOUT_SECONDS, initMethod: initMethod ?? ENV_INIT_METHOD, syncBatchNorm: syncBatchNorm ?? false };
}
import { addDataOptions, dataOptionsOf, datasetForRun } from './data-options';

export function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer but received "${value}"`);
  return n;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number but received "${value}"`);
  return n;
}

/** "128,256,512": a comma-separated list of integers. */
export function parseIntegerList(value: string): number[] {
  return value.split(',').map((part) => parseInteger(part.trim()));
}

/** A progress bar per epoch on a TTY; one line per epoch otherwise (logs, CI). */
export function progressPrinter(): { onProgress: (e: TrainProgress) => void; stop: () => void } {
  const cliProgress = require('cli-progress') as typeof import('cli-progress');
  const tty = Boolean(process.stderr.isTTY);
  let bar: import('cli-progress').SingleBar | undefined;
  let barEpoch = 0;
  return {
    onProgress: (e) => {
      if (e.type === 'step') {
        if (!tty) return;
        if (!bar || barEpoch !== e.epoch) {
          bar?.stop();
          bar = new cliProgress.SingleBar({
            format: `epoch ${e.epoch} [{bar}] {value}/{total} steps | loss {loss} | acc {acc} | {ips} img/s | eta {eta}s`,
            stream: process.stderr,
          }, cliProgress.Presets.shades_classic);
          bar.start(e.steps, 0, { loss: '-', acc: '-', ips: '-' });
          barEpoch = e.epoch;
        }
        bar.update(e.step, { loss: e.loss.toFixed(4), acc: (100 * e.accuracy).toFixed(2) + '%', ips: Math.round(e.imagesPerSecond) });
      } else {
        bar?.stop();
        bar = undefined;
        const r = e.record;
        process.stderr.write(`epoch ${e.epoch}/${e.epochs}: train loss ${r.trainLoss.toFixed(4)} acc ${(100 * r.trainAccuracy).toFixed(2)}% | ` +
          `test loss ${r.testLoss.toFixed(4)} acc ${(100 * r.testAccuracy).toFixed(2)}% | ${r.seconds.toFixed(1)} s, ${Math.round(r.imagesPerSecond)} img/s\n`);
      }
    },
    stop: () => bar?.stop(),
  };
}

export function addTrainCommand(program: Command): void {
  const command = program
    .command('train')
    .description('train a CNN (default: the TensorFlow-tutorial network on Fashion-MNIST, 1 epoch, CPU)');
  addDataOptions(command, 'all', 'fashion-mnist')
    .option('--preset <name>', 'start from a recipe: tutorial (the exercise\'s network), fast (a batch-norm CNN, one-cycle, augmentation), cifar (a batch-norm CNN for 32x32 colour images, crop and flip augmentation), speedrun (time to accuracy: a small one, eager, with a weight average and test-time flips on clothes) or speedrun-wide (the same training of a wider network, scripted, batches of 128: Fashion-MNIST\'s longest goal); flags given win')
    .option('--spec <file>', 'the network as a CnnSpec in JSON (conv, dense, dropout, inputChannels, ...; unknown keys refused); --kernel-size and --filters change its first layer')
    // No defaults below where a preset sets the value: trainCnn fills in the same defaults otherwise.
    .option('--epochs <n>', 'epochs (default 1)', parseInteger)
    .option('--batch-size <n>', 'batch size (default 128)', parseInteger)
    .option('--batch-sizes <list>', 'progressive batch sizes: one per epoch, comma-separated, the last for later epochs (e.g. 128,256,512)', parseIntegerList)
    .option('--lr <x>', 'learning rate (default 0.001)', parseNumber)
    .option('--optimizer <name>', 'adam, adamw or sgd (default adam)')
    .option('--momentum <x>', 'SGD momentum', parseNumber)
    .option('--nesterov', 'Nesterov momentum (SGD)')
    .option('--weight-decay <x>', 'L2 penalty (weight decay)', parseNumber)
    .option('--l1 <x>', 'L1 penalty on weights', parseNumber)
    .option('--weight-decay-on <what>', 'all (default) or weights: no weight decay on biases and batch-norm scales and shifts')
    .option('--device <name>', 'cpu, cuda or auto', 'cpu')
    .option('--mode <name>', 'eager or script (default eager)')
    .option('--precision <p>', 'fp32 or bf16 (autocast)', 'fp32')
    .option('--schedule <name>', 'learning rate over the run: constant, cosine or one-cycle (default constant)')
    .option('--warmup-steps <n>', 'steps of linear warm-up (constant, cosine) or of one-cycle\'s rise', parseInteger)
    .option('--label-smoothing <x>', 'label smoothing of the training loss, in [0, 1)', parseNumber)
    .option('--shift <n>', 'augmentation: shift training images by up to n pixels', parseInteger)
    .option('--flip', 'augmentation: mirror training images left-right at random')
    .option('--fill <how>', 'augmentation: what --shift pads with: zero (black, default) or mean (each channel\'s mean)')
    .option('--tta-flip', 'test-time augmentation: average the logits of each test image and its mirror (clothes, not digits)')
    .option('--tta-shift <n>', 'test-time augmentation: also average over the image moved n pixels down-right and up-left', parseInteger)
    .option('--ema <decay>', 'evaluate and return a moving average of the weights, with this decay (e.g. 0.99)', parseNumber)
    .option('--ema-every <n>', 'steps between updates of the moving average (default 1)', parseInteger)
    .option('--no-ema', 'no moving average of the weights (also over a preset\'s)')
    .option('--no-tta', 'no test-time augmentation (also over a preset\'s)')
    .option('--whiten', 'initialise the first convolution with the whitening filters of the training images\' patches')
    .option('--limit <n>', 'train on the first n images', parseInteger)
    .option('--test-limit <n>', 'evaluate on the first n test images', parseInteger)
    .option('--validation <n>', 'hold out the last n training images', parseInteger)
    .option('--seed <n>', 'random seed', parseInteger, 42)
    .option('--eval-chunk <n>', 'images per evaluation chunk (default 128 on the CPU, 1000 on a GPU)', parseInteger)
    .option('--snapshot-every <n>', 'record first-layer filters every n steps', parseInteger)
    .option('--kernel-size <n>', 'first-layer kernel size', parseInteger)
    .option('--filters <n>', 'first-layer filter count', parseInteger)
    .option('--no-standardize', 'keep pixels in [0, 1] instead of standardising with the training mean/std')
    .option('--resume <checkpoint>', 'continue from a run\'s model.pt')
    .option('--runs <dir>', 'parent folder of run folders', 'runs')
    .option('--name <name>', 'run name (default: dataset-mode)')
    .option('--no-pictures', 'skip mosaics, GIF and curves')
    .option('--keep-epoch-checkpoints', 'also keep each epoch\'s weights as epoch-<n>.pt (for convscope explain --across-training)')
    .option('--nproc-per-node <n>', 'data-parallel training: start n ranks on this machine (batch size per rank; see README "More than one process")', parseInteger)
    .option('--dist-timeout <s>', 'distributed runs: seconds a rank waits for its peers before failing (default 300)', parseNumber)
    .option('--dist-init-method <url>', 'distributed runs: how the ranks meet, as torch\'s init_method: env:// (MASTER_ADDR:MASTER_PORT, the default) or file:///shared/path (a file every rank sees)')
    .option('--sync-batch-norm', 'distributed runs: batch norms use the statistics of every rank\'s images together (SyncBatchNorm), not their own rank\'s')
    .option('--cuda-graph', 'scripted CUDA runs: replay the step from a CUDA graph where that is not the default (a distributed run: the gradients averaged beside it)')
    .option('--no-cuda-graph', 'scripted CUDA runs: issue every step\'s kernels instead of replaying one captured CUDA graph')
    .action(async (flags) => {
      if (flags.nprocPerNode !== undefined) {
        process.exitCode = await launchRanks(flags.nprocPerNode);
        return;
      }
      const distributed = distributedFlags(flags.distTimeout, flags.distInitMethod, flags.syncBatchNorm);
      // In a distributed run rank 0 alone claims the run folder and prints.
      const writes = !distributed || rankEnvironment(process.env, distributed.initMethod).rank === 0;
            const { trainCnn, presetOptions, PRESETS, readSpecFile } = require('../index') as typeof import('../index');
      const { formatSummary } = require('./summary') as typeof import('./summary');
      if (flags.preset !== undefined && !(PRESETS as readonly string[]).includes(flags.preset)) {
        throw new InvalidArgumentError(`--preset: expected one of ${PRESETS.join(', ')} but received "${flags.preset}"`);
      }
      const preset = flags.preset === undefined ? undefined : presetOptions(flags.preset, flags.dataset);
      // Resuming takes the spec from the checkpoint; a spec flag given with --resume is checked against it.
      // A --spec file is the network; without it or spec flags a preset brings its own spec. The
      // tutorial's network has no input shape or classes: trainCnn takes them from the data.
      const fileSpec = flags.spec === undefined ? undefined : readSpecFile(flags.spec);
      const specFlags = flags.kernelSize !== undefined || flags.filters !== undefined;
      const spec = fileSpec ?? ((flags.resume || preset) && !specFlags ? undefined : structuredClone((preset ?? presetOptions('tutorial', flags.dataset)).spec));
      if (spec && (flags.kernelSize !== undefined || flags.filters !== undefined) && spec.conv.length === 0) {
        throw new InvalidArgumentError('--kernel-size and --filters change the first conv layer, but the spec has none');
      }
      if (spec && flags.kernelSize !== undefined) spec.conv[0].kernelSize = flags.kernelSize;
      if (spec && flags.filters !== undefined) spec.conv[0].filters = flags.filters;
      const mode = flags.mode ?? preset?.mode ?? 'eager';
      const dataset = datasetForRun(flags.dataset);
      const name = flags.name ?? `${dataset.label}-${flags.preset ? flags.preset + '-' : ''}${mode}${flags.device === 'cpu' ? '' : '-' + flags.device}`;
      // Created here, exclusively: two runs of one name started in the same second get two folders.
      const runDir = writes ? claimRunFolder(flags.runs, runFolderName(name)) : undefined;
      const printer = writes ? progressPrinter() : { onProgress: undefined, stop: () => undefined };
      const controller = new AbortController();
      const onSignal = (): void => {
        process.stderr.write('\nstopping after the current step (Ctrl-C again to force)...\n');
        controller.abort();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      const options: TrainOptions = {
        preset: flags.preset, dataset: dataset.source, dataDir: flags.dataDir, data: dataOptionsOf(flags), spec, mode: flags.mode, epochs: flags.epochs,
        batchSize: flags.batchSize, learningRate: flags.lr, optimizer: flags.optimizer, momentum: flags.momentum,
        nesterov: flags.nesterov, weightDecay: flags.weightDecay, l1: flags.l1, device: flags.device, seed: flags.seed,
        evalChunkSize: flags.evalChunk, limit: flags.limit, testLimit: flags.testLimit, validation: flags.validation,
        standardize: flags.standardize, snapshotEvery: flags.snapshotEvery, resumeFrom: flags.resume,
        pictures: flags.pictures, precision: flags.precision, keepEpochCheckpoints: flags.keepEpochCheckpoints, runDir, onProgress: printer.onProgress, signal: controller.signal,
        // Left to trainCnn's default (on for scripted CUDA runs) unless switched off.
        cudaGraph: typeof flags.cudaGraph === 'boolean' ? flags.cudaGraph : undefined,
        schedule: flags.schedule, warmupSteps: flags.warmupSteps, labelSmoothing: flags.labelSmoothing,
        augment: flags.shift !== undefined || flags.flip || flags.fill !== undefined
          ? { shift: flags.shift ?? 0, flip: flags.flip === true, ...(flags.fill === undefined ? {} : { fill: flags.fill }) } : undefined,
        distributed,
        tta: flags.tta === false ? false : flags.ttaShift !== undefined || flags.ttaFlip ? { shift: flags.ttaShift ?? 0, flip: flags.ttaFlip === true } : undefined,
        batchSizes: flags.batchSizes, weightDecayOn: flags.weightDecayOn, whiten: flags.whiten,
        ema: flags.ema === false ? false : flags.ema !== undefined || flags.emaEvery !== undefined ? { decay: flags.ema, every: flags.emaEvery } : undefined,
      };
      for (const key of Object.keys(options) as (keyof TrainOptions)[]) if (options[key] === undefined) delete options[key];
      const result = await trainCnn(options).catch((err: unknown) => {
        // A run that failed before writing anything (bad data, a resume that does not fit) leaves no folder.
        if (runDir) removeIfEmpty(runDir);
        throw err;
      }).finally(() => {
        printer.stop();
        process.removeListener('SIGINT', onSignal);
      });
      if (writes) process.stdout.write(formatSummary(result) + '\n');
      result.model.dispose();
    });
}
