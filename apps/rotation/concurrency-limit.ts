/**
 * At most `permits` lifecycle steps at once in this process. A step holds one pooled database
 * connection for its transaction and, with the local secret backend, briefly needs a second
 * one for the secret operation; bounding the steps keeps the pool from being exhausted by
 * transactions all waiting for that second connection.
 */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError('permits must be a positive integer');
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.permits) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      // Hand the permit straight to the next waiter, or give it back.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Permits for a pool of `poolSize` connections: two per step, two kept for the relay and health checks. */
  static forPool(poolSize: number): ConcurrencyLimit {
    return new ConcurrencyLimit(Math.max(1, Math.floor((poolSize - 2) / 2)));
  }
}
