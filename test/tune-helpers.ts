// Shared by the tune tests: tiny data and network (a trial takes a fraction of a second on one
// thread), the search options built on them, a spy on every training, and the study read back
// through Optuna itself.
import * as fs from 'fs';
import * as path from 'path';
import * as trainModule from '../src/train/train-cnn';
import type { InMemoryDataset, TrainOptions } from '../src/train/options';
import type { CnnSpec } from '../src/nn/spec';
import type { TuneOptions } from '../src/tune/options';
import { OptunaHelper, StoredTrial } from '../src/tune/optuna-helper';
import { fashion } from './fixtures';

export const PIXELS = 28 * 28;
/** One conv layer and a small dense layer: a trial on a thousand images takes a fraction of a second. */
export const TINY: CnnSpec = { conv: [{ filters: 4, kernelSize: 5, padding: 'same', pool: true }], dense: [16], dropout: 0 };

/**
 * `train` Fashion-MNIST training images and 500 test images. With `scrambledTest` every test label is
 * moved to the next class: a network that learned the task scores far below chance on it, so the
 * test figures of the search's trials would rank them in the opposite order to their validation.
 */
export function tinyData(options: { scrambledTest?: boolean; train?: number } = {}): InMemoryDataset {
  const f = fashion();
  const n = options.train ?? 1200;
  const labels = f.test.labels.slice(0, 500);
  if (options.scrambledTest) labels.forEach((l, i) => { labels[i] = (l + 1) % 10; });
  return {
    name: 'fashion-subset', classNames: f.classNames,
    train: { images: f.train.images.subarray(0, n * PIXELS), labels: f.train.labels.subarray(0, n), count: n },
    test: { images: f.test.images.slice(0, 500 * PIXELS), labels, count: 500 },
  };
}

/** A search in `tmp/dir` on the tiny data: 1 thread, 1 epoch, no retraining unless asked. */
export function searchOptions(tmp: string, dir: string, extra: Partial<TuneOptions> = {}): TuneOptions {
  return {
    dir: path.join(tmp, dir), dataset: tinyData(), spec: TINY, mode: 'script', validation: 400, epochs: 1, batchSize: 32, seed: 3,
    threads: 1, heartbeat: 1, ...extra,
  };
}

/** Every trainCnn call made in this process, with the options it was given. */
export function spyTraining(): TrainOptions[] {
  const calls: TrainOptions[] = [];
  const real = trainModule.trainCnn;
  jest.spyOn(trainModule, 'trainCnn').mockImplementation((options?: TrainOptions) => {
    calls.push(options!);
    return real(options);
  });
  return calls;
}

/** The study's trials as Optuna holds them. */
export async function studyTrials(storage: string, study: string): Promise<StoredTrial[]> {
  const helper = await OptunaHelper.start();
  try {
    const described = await helper.open(storage, study, 10);
    if (!described.exists) throw new Error(`no study ${study} in ${storage}`);
    return (await helper.trials()).trials;
  } finally {
    await helper.close();
  }
}

export const sqliteUrl = (dir: string): string => `sqlite:///${path.resolve(dir, 'study.db')}`;

/** The child processes of `pid` (from /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The command line of process `pid`. */
export function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** This process's Optuna helpers (python children running tune_helper.py). */
export function helperPids(parent: number): number[] {
  return childPids(parent).filter((pid) => commandLine(pid).includes('tune_helper.py'));
}
