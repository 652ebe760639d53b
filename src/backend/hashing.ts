/** Where password hashes are computed: a niced child process, or this process. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import argon2, { type Options as Argon2Options } from 'argon2';
import bcrypt from 'bcrypt';

/** The expensive password functions, wherever they run. */
export interface HashFunctions {
  argon2Hash(password: string, options: Argon2Options): Promise<string>;
  /** Throws on a malformed hash, as argon2.verify does. */
  argon2Verify(hash: string, password: string): Promise<boolean>;
  bcryptCompare(password: string, hash: string): Promise<boolean>;
  close(): Promise<void>;
}

/** In this process, on libuv's threadpool: for the CLI, whose one hash competes with nothing. */
export const inProcessHashing: HashFunctions = {
  argon2Hash: (password, options) => argon2.hash(password, options),
  argon2Verify: (hash, password) => argon2.verify(hash, password),
  bcryptCompare: (password, hash) => bcrypt.compare(password, hash),
  close: async () => undefined,
};

type HashOp =
  | { op: 'argon2-hash'; password: string; options: Argon2Options }
  | { op: 'argon2-verify'; hash: string; password: string }
  | { op: 'bcrypt-compare'; password: string; hash: string };

export type HashRequest = HashOp & { id: number };

export type HashReply =
  { id: number; ok: true; value: string | boolean } | { id: number; ok: false; message: string };

/** What the child says once it listens: requests sent before then could go to another listener. */
export interface WorkerReady {
  ready: true;
}

interface PendingHash {
  child: ChildProcess;
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** The hashing process ended, or stopped answering, with hashes in flight: retry their logins. */
export class HashingUnavailableError extends Error {
  override name = 'HashingUnavailableError';
}

/** Hashing was closed with the server: a login still running then is refused, not restarted. */
export class HashingClosedError extends HashingUnavailableError {
  override name = 'HashingClosedError';
}

const closedError = () =>
  new HashingClosedError('the password hashing process is closed: the server is stopping');

const here = fileURLToPath(import.meta.url);
const WORKER = here.replace(/hashing\.(ts|js)$/, 'hash_worker.$1');
/**
 * The child gets none of the server's node flags: an inspector port or a profiler would clash
 * with the server's, a preload would run twice. Tests run the TypeScript sources, through tsx.
 */
const WORKER_EXEC_ARGV = WORKER.endsWith('.ts') ? ['--import', 'tsx'] : [];
/**
 * A hash takes tens of milliseconds, and seconds niced on a saturated machine; a process that has
 * not answered one in 30 s is stuck (stopped, deadlocked), and its logins would wait forever.
 */
const ANSWER_WITHIN_MS = 30_000;

/**
 * Hashes in a child process running at a lower CPU priority (a nice value, 10 by default). A hash
 * holds a core for tens of milliseconds; at the same priority as the server, PostgreSQL and the
 * load it serves, that core is simply gone for them, and on 2 cores the reads' p99 more than
 * doubled during a login storm. Niced, a hash gets the CPU that requests leave, and all of it
 * when there are none. The process starts with the first hash, is replaced after a crash or when
 * it leaves a hash unanswered too long (the hashes in flight fail with HashingUnavailableError),
 * and ends with the server.
 */
export class NicedHashing implements HashFunctions {
  private child: ChildProcess | undefined;
  /** Requests for the current child until it says it listens; then undefined. */
  private backlog: HashRequest[] | undefined;
  private readonly pending = new Map<number, PendingHash>();
  private nextId = 1;
  /** Closed with the server: a hash asked for later starts no new process. */
  private closed = false;

  constructor(
    private readonly nice: number,
    private readonly answerWithinMs = ANSWER_WITHIN_MS,
  ) {}

  argon2Hash(password: string, options: Argon2Options): Promise<string> {
    return this.run({ op: 'argon2-hash', password, options }) as Promise<string>;
  }

  argon2Verify(hash: string, password: string): Promise<boolean> {
    return this.run({ op: 'argon2-verify', hash, password }) as Promise<boolean>;
  }

  bcryptCompare(password: string, hash: string): Promise<boolean> {
    return this.run({ op: 'bcrypt-compare', password, hash }) as Promise<boolean>;
  }

  /** The child's pid once it runs: for tests and operators looking for it. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.child = undefined;
    this.backlog = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.ref(); // until it has exited
    if (child.connected) child.disconnect();
    else child.kill();
    await exited;
  }

  private run(op: HashOp): Promise<string | boolean> {
    // A login still running when the server has closed (its client gone, so the HTTP server did
    // not wait for it) would otherwise start a process that outlives the server's last moments.
    if (this.closed) {
      return Promise.reject(closedError());
    }
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A hash in flight keeps the process alive (until its answer or the child's exit), as one
      // on the threadpool would.
      if (this.pending.size === 0) {
        child.ref();
        child.channel?.ref();
      }
      const timer = setTimeout(() => {
        this.giveUp(child, id);
      }, this.answerWithinMs).unref();
      this.pending.set(id, { child, resolve, reject, timer });
      const request = { ...op, id };
      if (this.backlog === undefined) child.send(request);
      else this.backlog.push(request);
    });
  }

  private settle(child: ChildProcess, id: number): PendingHash | undefined {
    const waiting = this.pending.get(id);
    if (waiting !== undefined) clearTimeout(waiting.timer);
    this.pending.delete(id);
    if (this.pending.size === 0) {
      child.unref();
      child.channel?.unref();
    }
    return waiting;
  }

  /** A process that leaves one hash unanswered answers none: the next hash starts a new one. */
  private giveUp(child: ChildProcess, id: number): void {
    this.settle(child, id)?.reject(
      new HashingUnavailableError(
        `the password hashing process did not answer within ${this.answerWithinMs} ms`,
      ),
    );
    this.forget(child);
    child.kill('SIGKILL');
  }

  /** The next hash starts a new process, if this one is still the current. */
  private forget(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.backlog = undefined;
  }

  private start(): ChildProcess {
    // The server's settings (the token key, the database's password) are not the child's business.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('MYAPI_')),
    );
    const child = fork(WORKER, [], {
      env: { ...env, MYAPI_HASH_NICE: String(this.nice) },
      // Its own process group: Ctrl-C in a terminal, or a signal to the server's group, must not
      // end it before the server has finished the logins in flight. It ends when the server does.
      detached: true,
      execArgv: WORKER_EXEC_ARGV,
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // Neither the child nor its channel keeps the server alive: it ends when the server does.
    child.unref();
    child.channel?.unref();
    const backlog: HashRequest[] = [];
    child.on('message', (reply: HashReply | WorkerReady) => {
      if ('ready' in reply) {
        if (this.child === child) this.backlog = undefined;
        for (const request of backlog) child.send(request);
        return;
      }
      const waiting = this.settle(child, reply.id);
      if (reply.ok) waiting?.resolve(reply.value);
      else waiting?.reject(new Error(reply.message));
    });
    // A failed send or spawn ends in 'exit', which answers every hash in flight.
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      this.forget(child);
      // Closed with the server, the process ends with the hashes of logins whose clients left
      // (the server waited for the rest): they are refused as stopping, not told to retry here.
      const error = this.closed
        ? closedError()
        : new HashingUnavailableError(
            `the password hashing process exited (${signal ?? `code ${String(code)}`})`,
          );
      for (const [id, waiting] of this.pending) {
        if (waiting.child === child) this.settle(child, id)?.reject(error);
      }
    });
    this.child = child;
    this.backlog = backlog;
    return child;
  }
}
