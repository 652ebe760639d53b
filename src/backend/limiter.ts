/** Raised when the queue is full: the caller should answer "busy, retry" rather than wait. */
export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`queue full (${queued} waiting)`);
    this.name = 'QueueFullError';
  }
}

/** The share of time a slot may be busy: fixed, or asked for again after each task. */
export type DutyCycle = number | (() => number);

/** How many tasks may run at once: fixed, or asked for again whenever a task starts or ends. */
export type Concurrency = number | (() => number);

/** The event loop's utilization since the previous call (0 to 1): how busy this process is. */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return busy;
  };
}

/** Below this event-loop utilization the process serves next to nothing. */
const IDLE_BELOW = 0.25;
/** The utilization is measured over at least this long, so one quick look decides nothing. */
const LOAD_WINDOW_MS = 100;

/**
 * A concurrency that follows this process's load: `whenIdle` while its event loop has served
 * next to nothing since the last look (logins alone: every core may hash), `whenBusy` otherwise
 * (requests are being served: the other cores stay theirs).
 */
export function loadAwareConcurrency(whenIdle: number, whenBusy: number): () => number {
  const utilization = loopUtilization();
  let lookedAt = Number.NEGATIVE_INFINITY;
  let current = whenBusy;
  return () => {
    const now = performance.now();
    if (now - lookedAt >= LOAD_WINDOW_MS) {
      lookedAt = now;
      current = utilization() < IDLE_BELOW ? whenIdle : whenBusy;
    }
    return current;
  };
}

/**
 * A duty cycle that follows this process's load: 1 (no rest) while its event loop serves next to
 * nothing (logins alone keep it busy a tenth of the time, and a rest in proportion would leave a
 * core idle that long), then down to `whenBusy` as the loop fills; measured over the time since
 * the previous call, that is over the last task and its rest. Hashing steals the cores that the
 * requests, PostgreSQL and the other processes need, and on a VM's cores even CPU that the
 * scheduler counts as idle (a spinning process at the lowest priority cost the reads a third of
 * their throughput on the bench machine): so it yields while requests are served, and takes all it
 * can when they are not.
 */
export function loadAwareDutyCycle(whenBusy: number): () => number {
  const utilization = loopUtilization();
  return () => {
    const busy = utilization();
    return busy < IDLE_BELOW ? 1 : 1 - busy * (1 - whenBusy);
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
    readonly concurrency: Concurrency,
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
    return this.running >= this.limit() && this.waiting.length >= this.maxQueued;
  }

  private limit(): number {
    return typeof this.concurrency === 'number' ? this.concurrency : this.concurrency();
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const asked = performance.now();
    // First come, first served: while tasks wait, a new one waits behind them.
    if (this.waiting.length === 0 && this.running < this.limit()) {
      this.running++;
    } else {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.waiting.length);
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        this.admit();
      });
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

  /** Frees a slot: a waiting task takes it, unless the concurrency has fallen meanwhile. */
  private release(): void {
    this.running--;
    this.admit();
  }

  /** Starts waiting tasks while the concurrency allows: it may have grown since they came. */
  private admit(): void {
    const limit = this.limit();
    while (this.running < limit) {
      const next = this.waiting.shift();
      if (next === undefined) return;
      this.running++;
      next();
    }
  }
}
