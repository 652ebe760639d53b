/**
 * Work that must finish before what it needs closes: a server stopping waits for it (bounded)
 * before it closes the hashing process and the database pool under it.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** `work`, remembered until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const forget = () => {
      this.running.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  /** Resolves once nothing is running (work started meanwhile included), or after `withinMs`. */
  async settled(withinMs: number): Promise<void> {
    const deadline = performance.now() + withinMs;
    while (this.running.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.running]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
