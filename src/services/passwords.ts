/** PasswordHasher: argon2id hashing and verification (bcrypt accepted), bounded and queued. */
import argon2 from 'argon2';
import {
  HashingClosedError,
  HashingUnavailableError,
  inProcessHashing,
  type HashFunctions,
} from '../backend/hashing.js';
import { inChildSpan } from '../backend/tracing.js';
import {
  ConcurrencyLimiter,
  QueueFullError,
  type Concurrency,
  type DutyCycle,
} from '../backend/limiter.js';
import { ServiceUnavailableError } from '../exc.js';
import { noMetrics, type ServiceMetrics } from './metrics.js';

/** OWASP's argon2id setting (19 MiB, 2 passes, 1 lane): strong, and cheap enough for 2 cores. */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };
const BCRYPT_PREFIX = /^\$2[aby]\$/;
/** The spans of a request's hashing (with tracing on): their time includes the wait in the queue. */
const HASH_SPAN = () => ({ name: 'password hash', attributes: {} });
const VERIFY_SPAN = () => ({ name: 'password verify', attributes: {} });

export interface Verification {
  ok: boolean;
  /** The hash is legacy (bcrypt) or weaker than today's setting: store a new one. */
  needsRehash: boolean;
}

/**
 * Hashes with argon2id; verifies argon2 hashes and the bcrypt hashes that passlib wrote for the
 * FastAPI app, so its users keep their passwords and move to argon2id at their next login.
 */
export interface HasherOptions {
  /**
   * Replace bcrypt hashes at login. Off while the FastAPI app still serves the same users
   * table: it cannot verify argon2id, so an upgrade would lock users out of it.
   */
  upgradeLegacy?: boolean;
  /** Hashes computed at once (perhaps following the load); the rest of the machine keeps the other cores. */
  concurrency?: Concurrency;
  /** Hashes allowed to wait; beyond that a login is answered 503 with Retry-After. */
  maxQueued?: number;
  /** The share of time each hashing slot may compute; it rests the remainder. */
  dutyCycle?: DutyCycle;
  /** Where the hashes are computed: in this process unless told (the server hashes niced). */
  functions?: HashFunctions;
  /** Where the queue's depth and waits are reported (the server's metrics). */
  metrics?: ServiceMetrics;
}

function busy(cause: QueueFullError): ServiceUnavailableError {
  return new ServiceUnavailableError('Too many logins at once; retry shortly', cause, 1);
}

export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;
  private readonly upgradeLegacy: boolean;
  private readonly limiter: ConcurrencyLimiter;
  private readonly functions: HashFunctions;

  constructor(options: HasherOptions = {}) {
    this.upgradeLegacy = options.upgradeLegacy ?? true;
    this.functions = options.functions ?? inProcessHashing;
    const metrics = options.metrics ?? noMetrics;
    const limiter = new ConcurrencyLimiter(
      options.concurrency ?? 1,
      options.maxQueued ?? 64,
      options.dutyCycle ?? 1,
      (seconds) => {
        metrics.hashWaited(seconds);
      },
    );
    metrics.watchHashQueue(() => ({ queued: limiter.queued, running: limiter.busy }));
    this.limiter = limiter;
  }

  /** Runs one expensive hash operation in its turn, or refuses when too many are waiting. */
  private async limited<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.limiter.run(work);
    } catch (error) {
      if (error instanceof QueueFullError) throw busy(error);
      if (error instanceof HashingUnavailableError) {
        const detail =
          error instanceof HashingClosedError
            ? 'The server is stopping; retry shortly'
            : 'Password hashing is restarting; retry shortly';
        throw new ServiceUnavailableError(detail, error, 1);
      }
      throw error;
    }
  }

  /**
   * Refuses at once when a hash asked for now would be refused: a login checks this before its
   * database work, so a flood of logins beyond the queue costs no connection the reads need.
   */
  refuseWhenFull(): void {
    if (this.limiter.full) throw busy(new QueueFullError(this.limiter.queued));
  }

  hash(password: string): Promise<string> {
    return inChildSpan(HASH_SPAN, () =>
      this.limited(() => this.functions.argon2Hash(password, ARGON2_OPTIONS)),
    );
  }

  verify(storedHash: string, password: string): Promise<Verification> {
    return inChildSpan(VERIFY_SPAN, () => this.limited(() => this.verifyNow(storedHash, password)));
  }

  private async verifyNow(storedHash: string, password: string): Promise<Verification> {
    if (BCRYPT_PREFIX.test(storedHash)) {
      // $2y$ (PHP, some passlib setups) is the same algorithm as $2b$, which is all bcrypt reads.
      const normalized = storedHash.replace(/^\$2y\$/, '$2b$');
      const ok = await this.functions.bcryptCompare(password, normalized);
      return { ok, needsRehash: ok && this.upgradeLegacy };
    }
    if (storedHash.startsWith('$argon2')) {
      try {
        const ok = await this.functions.argon2Verify(storedHash, password);
        return { ok, needsRehash: ok && argon2.needsRehash(storedHash, ARGON2_OPTIONS) };
      } catch (error) {
        // A lost hashing process says nothing about the password: 503, not a wrong password.
        if (error instanceof HashingUnavailableError) throw error;
        return { ok: false, needsRehash: false }; // a stored hash argon2 cannot read
      }
    }
    return { ok: false, needsRehash: false };
  }

  /**
   * Spends the time of a real verification for a user that does not exist, so the response
   * time does not tell an attacker which emails have accounts.
   */
  verifyNothing(password: string): Promise<void> {
    // The same span as a real verification: a trace does not tell unknown users apart either.
    return inChildSpan(VERIFY_SPAN, async () => {
      const dummy = await this.dummy();
      await this.limited(() => this.functions.argon2Verify(dummy, password));
    });
  }

  /** The hash verifyNothing checks against: made once, in turn, and made again if that failed. */
  private dummy(): Promise<string> {
    if (this.dummyHash === undefined) {
      const made = this.limited(() =>
        this.functions.argon2Hash('myapi-dummy-password-for-timing', ARGON2_OPTIONS),
      );
      this.dummyHash = made;
      made.catch(() => {
        if (this.dummyHash === made) this.dummyHash = undefined;
      });
    }
    return this.dummyHash;
  }
}
