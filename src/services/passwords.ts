import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildWorker } from '../backend/child_worker.js';
import { ConcurrencyLimiter, QueueFullError } from '../backend/limiter.js';
import { ServiceUnavailableError } from '../exc.js';
import {
  passwordAlgorithms,
  type PasswordOperation,
  type Verification,
} from './password_algorithms.js';

export type { Verification } from './password_algorithms.js';

/** The hashing process runs at this niceness: under contention, reads and the database go first. */
const HASHING_NICENESS = 10;
const WORKER_MODULE = fileURLToPath(
  new URL(`./hash_worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

export interface HasherOptions {
  /**
   * Replace bcrypt hashes at login. Off while the FastAPI app still serves the same users
   * table: it cannot verify argon2id, so an upgrade would lock users out of it.
   */
  upgradeLegacy?: boolean;
  /** Hashes computed at once; the rest of the machine keeps the other cores. */
  concurrency?: number;
  /** Hashes allowed to wait; beyond that a login is answered 503 with Retry-After. */
  maxQueued?: number;
  /**
   * Hash in a separate, lower-priority process (the server) rather than in this one (the CLI,
   * which hashes once and exits).
   */
  isolated?: boolean;
}

type Operation<K extends PasswordOperation> = (typeof passwordAlgorithms)[K];

/**
 * Hashes with argon2id; verifies argon2 hashes and the bcrypt hashes that passlib wrote for the
 * FastAPI app, so its users keep their passwords and move to argon2id at their next login.
 * Every hash waits its turn in a bounded queue.
 */
export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;
  private readonly upgradeLegacy: boolean;
  private readonly limiter: ConcurrencyLimiter;
  private readonly worker: ChildWorker | undefined;

  constructor(options: HasherOptions = {}) {
    this.upgradeLegacy = options.upgradeLegacy ?? true;
    const concurrency = options.concurrency ?? 1;
    this.limiter = new ConcurrencyLimiter(concurrency, options.maxQueued ?? 64);
    this.worker =
      options.isolated === true
        ? new ChildWorker(WORKER_MODULE, {
            niceness: HASHING_NICENESS,
            // Enough libuv threads in the worker for the hashes we allow at once.
            env: { UV_THREADPOOL_SIZE: String(Math.max(4, concurrency)) },
          })
        : undefined;
  }

  /** Runs one hash operation in its turn, here or in the hashing process. */
  private async run<K extends PasswordOperation>(
    op: K,
    ...args: Parameters<Operation<K>>
  ): Promise<Awaited<ReturnType<Operation<K>>>> {
    const work = () => {
      if (this.worker !== undefined) return this.worker.call(op, args);
      const operation = passwordAlgorithms[op] as (...a: unknown[]) => Promise<unknown>;
      return operation(...args);
    };
    try {
      return (await this.limiter.run(work)) as Awaited<ReturnType<Operation<K>>>;
    } catch (error) {
      if (error instanceof QueueFullError) {
        throw new ServiceUnavailableError('Too many logins at once; retry shortly', error, 1);
      }
      throw error;
    }
  }

  hash(password: string): Promise<string> {
    return this.run('hash', password);
  }

  verify(storedHash: string, password: string): Promise<Verification> {
    return this.run('verify', storedHash, password, this.upgradeLegacy);
  }

  /**
   * Spends the time of a real verification for a user that does not exist, so the response
   * time does not tell an attacker which emails have accounts.
   */
  async verifyNothing(password: string): Promise<void> {
    this.dummyHash ??= this.hash('myapi-dummy-password-for-timing');
    await this.verify(await this.dummyHash, password);
  }

  /** Stops the hashing process, if there is one. */
  async close(): Promise<void> {
    await this.worker?.close();
  }
}
