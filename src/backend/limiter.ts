/** Raised when the queue is full: the caller should answer "busy, retry" rather than wait. */
export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`queue full (${queued} waiting)`);
    this.name = 'QueueFullError';
  }
}

/**
 * Runs at most `concurrency` tasks at once and lets at most `maxQueued` more wait; beyond that
 * it refuses at once. Password hashing goes through one: each hash holds a libuv thread and a
 * core for tens of milliseconds, and hundreds of them in parallel would starve everything else.
 */
export class ConcurrencyLimiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxQueued: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.waiting.length);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips below the load.
      const next = this.waiting.shift();
      if (next === undefined) this.running--;
      else next();
    }
  }
}
