// A long-lived child process spoken to in JSON lines over its stdin and stdout: one request line, one
// reply line, in order. Used for tune's Optuna helper (python/tune_helper.py). The child's first line
// says whether it is ready; a reply with ok: false becomes a rejected promise; a child that exits, is
// killed or stops answering rejects every pending request with an error that carries the end of its
// stderr, so a caller never waits on a dead process.
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';

/** An error the child reported for one request: its own type name (Python's exception class) and message. */
export class HelperRequestError extends Error {
  constructor(readonly op: string, readonly type: string, message: string) {
    super(message);
    this.name = 'HelperRequestError';
  }
}

/** The child exited, was killed, could not start or did not answer in time. */
export class HelperExitedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperExitedError';
  }
}

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/** What is kept of the child's stderr for error messages (its last lines). */
const STDERR_KEEP = 8 * 1024;

export interface JsonLinesOptions {
  /** Named in every error ('the Optuna helper'). */
  name: string;
  /** How long the first (ready) line may take (default 60 s). */
  readyTimeoutMs?: number;
  /** How long one reply may take before the child is killed and the request rejected (default 10 min). */
  requestTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class JsonLinesProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = '';
  private stderrTail = '';
  private exited: HelperExitedError | undefined;
  private readonly exitPromise: Promise<void>;
  private readyResolve!: (line: Record<string, unknown>) => void;
  private readyReject!: (err: Error) => void;
  /** The child's ready line. */
  readonly ready: Promise<Record<string, unknown>>;
  private gotReady = false;

  constructor(command: string, args: string[], private readonly options: JsonLinesOptions) {
    this.ready = new Promise((resolve, reject) => { this.readyResolve = resolve; this.readyReject = reject; });
    // A rejection nobody awaits yet (the caller awaits ready later) must not crash the process.
    this.ready.catch(() => undefined);
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const readyTimer = setTimeout(() => this.fail(`${options.name} did not start within ${(options.readyTimeoutMs ?? 60000) / 1000} s`, true),
      options.readyTimeoutMs ?? 60000);
    readyTimer.unref();
    this.ready.then(() => clearTimeout(readyTimer), () => clearTimeout(readyTimer));
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onData(chunk));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_KEEP);
    });
    // A write to a child that died is reported by 'exit'; the pipe's own EPIPE must not crash us.
    this.child.stdin.on('error', () => undefined);
    this.exitPromise = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.fail(`${options.name} could not be started (${command}): ${err.message}`);
        resolve();
      });
      this.child.on('close', (code, signal) => {
        this.fail(`${options.name} (${command}, pid ${this.child.pid}) exited ${signal ? `on signal ${signal}` : `with code ${code}`}`);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines the child wrote to stderr (tracebacks, warnings). */
  get stderr(): string {
    return this.stderrTail;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(`${this.options.name} wrote a line that is not JSON: ${line.slice(0, 200)}`, true);
      return;
    }
    if (!this.gotReady) {
      this.gotReady = true;
      this.readyResolve(message);
      return;
    }
    const id = message.id as number;
    const entry = this.pending.get(id);
    if (!entry) {
      this.fail(`${this.options.name} answered request ${String(id)}, which is not waiting for an answer`, true);
      return;
    }
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (message.ok === true) {
      entry.resolve(message.result);
    } else {
      const error = (message.error ?? {}) as { type?: string; message?: string };
      entry.reject(new HelperRequestError(entry.op, error.type ?? 'Error', error.message ?? 'unknown error'));
    }
  }

  /** Rejects everything pending (and every later request) with `message` plus the stderr tail; kills the child when asked. */
  private fail(message: string, kill = false): void {
    if (this.exited) return;
    const tail = this.stderrTail.trim();
    this.exited = new HelperExitedError(tail ? `${message}; the end of its stderr:\n${tail.split('\n').slice(-15).join('\n')}` : message);
    if (!this.gotReady) this.readyReject(this.exited);
    for (const entry of this.pending.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.reject(this.exited);
    }
    this.pending.clear();
    if (kill) this.child.kill('SIGKILL');
  }

  /** Sends `{ id, op, ...payload }` and resolves with the reply's result. */
  request<T>(op: string, payload: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timeout = this.options.requestTimeoutMs ?? 10 * 60 * 1000;
      const timer = setTimeout(() => this.fail(`${this.options.name} did not answer ${op} within ${timeout / 1000} s`, true), timeout);
      timer.unref();
      this.pending.set(id, { op, resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.stdin.write(JSON.stringify({ id, op, ...payload }) + '\n');
    });
  }

  /** Asks the child to finish (op 'close', then end of stdin) and waits for it to exit. */
  async close(): Promise<void> {
    if (!this.exited) {
      try {
        await this.request('close');
      } catch {
        // Gone already: nothing to close.
      }
      this.child.stdin.end();
    }
    await this.exitPromise;
  }

  /** Ends the child at once (SIGKILL). */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}
