/** Raised when the queue is full: the caller should answer "busy, retry" rather than wait. */
export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`queue full (${queued} waiting)`);
    this.name = 'QueueFullError';
  }
}

/** The share of time a slot may be busy: fixed, or asked for again after each task. */
export type DutyCycle = number | (() => number);

/**
 * A duty cycle that follows this process's load: 1 (no rest) while its event loop idles, down to
 * `whenBusy` while the loop is fully used, in proportion in between; measured over the time since
 * the previous call, that is over the last task and its rest. Hashing steals the cores that the
 * requests, PostgreSQL and the other processes need, and on a VM's cores even CPU that the
 * scheduler counts as idle (a spinning process at the lowest priority cost the reads a third of
 * their throughput on the bench machine): so it yields while requests are served, and takes all it
 * can when they are not.
 */
export function loadAwareDutyCycle(whenBusy: number): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return 1 - busy * (1 - whenBusy);
  };
}

/**
 * Runs at most `concurrency` tasks at once and lets at most `maxQueued` more wait; beyond that
 * it refuses at once. Password hashing goes through one: each hash holds a libuv thread and a
 * core for tens of milliseconds, and hundreds of them in parallel would starve everything else.
 */
export class ConcurrencyLimiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * @param dutyCycle the share of time a slot may be busy: after a task of d ms its slot rests
   *   d * (1 / dutyCycle - 1) ms, so that 0.5 keeps each slot idle half the time on average.
   */
  constructor(
    readonly concurrency: number,
    readonly maxQueued: number,
    readonly dutyCycle: DutyCycle = 1,
    /** Told how long each task waited for its slot, in seconds (0 when it got one at once). */
    private readonly onWaited?: (seconds: number) => void,
  ) {}

  /** Slots in use: computing, or resting after a task. */
  get busy(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** A task given now would be refused: every slot busy and the queue full. */
  get full(): boolean {
    return this.running >= this.concurrency && this.waiting.length >= this.maxQueued;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const asked = performance.now();
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.waiting.length);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    const started = performance.now();
    this.onWaited?.((started - asked) / 1000);
    try {
      return await task();
    } finally {
      const duty = typeof this.dutyCycle === 'number' ? this.dutyCycle : this.dutyCycle();
      const rest = (performance.now() - started) * (1 / duty - 1);
      if (rest >= 1)
        setTimeout(() => {
          this.release();
        }, rest);
      else this.release();
    }
  }

  /** Hands the slot straight to the next waiter, so `running` never dips below the load. */
  private release(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.running--;
    else next();
  }
}
