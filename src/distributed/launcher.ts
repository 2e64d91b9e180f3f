// `convscope train --nproc-per-node N`: starts N ranks on this machine as torchrun would (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), rank 0 serving the store on a
// free port. When a rank fails the others are stopped; the launcher exits with the first failure's code.
import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';

/** The command line without `flag` and its value (`--flag n` or `--flag=n`): what each rank runs. */
export function withoutFlag(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === flag) ++i;
    else if (!args[i].startsWith(`${flag}=`)) out.push(args[i]);
  }
  return out;
}

/** A TCP port free on the loopback interface now (the OS's choice). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface LaunchOptions {
  /** Ranks to start. */
  ranks: number;
  /** The command line each rank runs: [program, ...args]. */
  command: string[];
  /** Rendezvous port (default: a free one). */
  port?: number;
  env?: NodeJS.ProcessEnv;
}

/** Each rank's exit: its code, or the signal that ended it. */
export interface RankExit { rank: number; code: number | null; signal: NodeJS.Signals | null }

/**
 * Runs `ranks` local ranks of `command` and resolves with the launcher's exit code: 0 when every rank
 * exited 0; else the first failing rank's code (128 + signal number for a signal), after the others
 * were sent SIGTERM.
 * @example process.exitCode = await launchLocalRanks({ ranks: 2, command: [process.execPath, 'main.js', 'train'] })
 */
export async function launchLocalRanks(options: LaunchOptions): Promise<{ code: number; exits: RankExit[] }> {
  const port = options.port ?? await freePort();
  const children: ChildProcess[] = [];
  // Ctrl-C reaches the ranks from the terminal (one process group): each stops at its next step and
  // the launcher waits for them. A SIGTERM sent to the launcher alone is passed on to them.
  const onInterrupt = (): void => undefined;
  const onTerminate = (): void => { for (const child of children) child.kill('SIGTERM'); };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  const exits: RankExit[] = [];
  let failure: RankExit | undefined;
  const done = new Promise<void>((resolve) => {
    for (let rank = 0; rank < options.ranks; ++rank) {
      const env = {
        ...(options.env ?? process.env),
        RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(options.ranks), LOCAL_WORLD_SIZE: String(options.ranks),
        GROUP_RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      };
      const child = spawn(options.command[0], options.command.slice(1), { env, stdio: 'inherit' });
      children.push(child);
      // A rank that cannot even start (no such program) counts as a failed one.
      child.on('error', () => child.emit('exit', 127, null));
      child.on('exit', (code, signal) => {
        if (exits.some((e) => e.rank === rank)) return;
        const exit = { rank, code, signal };
        exits.push(exit);
        if (!failure && (code !== 0 || signal)) {
          failure = exit;
          // The others would otherwise wait for the failed rank until their timeout.
          for (const other of children) if (other !== child && other.exitCode === null && other.signalCode === null) other.kill('SIGTERM');
        }
        if (exits.length === options.ranks) resolve();
      });
    }
  });
  await done;
  process.removeListener('SIGINT', onInterrupt);
  process.removeListener('SIGTERM', onTerminate);
  if (!failure) return { code: 0, exits };
  const code = failure.code ?? 128 + signalNumber(failure.signal);
  return { code: code === 0 ? 1 : code, exits };
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers = (require('os') as typeof import('os')).constants.signals as Record<string, number>;
  return (signal && numbers[signal]) || 0;
}
