import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';

interface Pending {
  /** The process the call went to, once sent. */
  child?: ChildProcess;
  op: string;
  args: unknown[];
  attempt: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * A child Node process that runs named operations for this one, started on first use at a lower
 * scheduling priority (nice), and started again if it dies. The operations must be pure (safe to
 * repeat): a call in flight when the process dies is given once to its successor.
 */
export class ChildWorker {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly modulePath: string,
    private readonly options: { niceness: number; env?: NodeJS.ProcessEnv },
  ) {}

  call(op: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.dispatch({ op, args, attempt: 1, resolve, reject });
    });
  }

  private dispatch(call: Pending): void {
    const child = this.start();
    const id = this.nextId++;
    // Keep this process alive for the answer, but not for an idle worker.
    if (this.pending.size === 0) child.channel?.ref();
    this.pending.set(id, { ...call, child });
    child.send({ id, op: call.op, args: call.args }, (error) => {
      if (error === null) return;
      this.pending.delete(id);
      this.forget(child);
      this.retry(call, error);
    });
  }

  private retry(call: Pending, error: Error): void {
    if (call.attempt >= 2) call.reject(error);
    else this.dispatch({ ...call, attempt: call.attempt + 1 });
  }

  private forget(child: ChildProcess): void {
    if (this.child === child) this.child = undefined;
    child.kill('SIGKILL');
  }

  private start(): ChildProcess {
    if (this.child?.connected === true) return this.child;
    const child = fork(this.modulePath, [], {
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, this.options.niceness);
      } catch {
        // Not permitted here: it still works, at normal priority.
      }
    }
    child.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) child.channel?.unref();
      if (reply.ok) waiting?.resolve(reply.result);
      else waiting?.reject(new Error(reply.error ?? 'failed in the worker process'));
    });
    // A send to a process that just died reports through send's callback as well.
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const error = new Error(`the worker process exited (${signal ?? String(code)})`);
      for (const [id, call] of this.pending) {
        if (call.child !== child) continue;
        this.pending.delete(id);
        this.retry(call, error);
      }
    });
    // Never keep the parent alive on its own: it lives as long as the parent needs it.
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  /** Stops the process; the next call would start a new one. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Waiting for the exit is work: keep the event loop alive until it comes.
    child.ref();
    child.disconnect();
    await exited;
  }
}
