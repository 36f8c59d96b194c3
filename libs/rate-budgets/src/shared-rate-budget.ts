import { DataSource } from 'typeorm';

/** What a budget allows: `limit` tokens in any `windowMs` (every window, not aligned ones). */
export interface BudgetShape {
  limit: number;
  windowMs: number;
}

/** Tokens granted from `startsInMs` on (Postgres' clock), or none within the horizon asked for. */
export type Booking = { booked: true; granted: number; leaseId: string; startsInMs: number; startsAtMs: number } | { booked: false; retryAfterMs: number };

/** No token is to be had within the wait allowed: the budget is booked further ahead. */
export class RateBudgetExhaustedError extends Error {
  constructor(
    readonly budget: string,
    /** When a token would be free if nobody else booked one first. */
    readonly retryAfterMs: number,
  ) {
    super(`The shared budget "${budget}" is booked for the next ${Math.ceil(retryAfterMs)} ms`);
    this.name = 'RateBudgetExhaustedError';
  }
}

/**
 * A turn whose timer fires more than this late is given up and booked again (unless the caller
 * says otherwise), so a replica that stalled — a long GC, a blocked event loop — cannot release
 * its turns as one burst afterwards.
 */
const LATE_TURN_MS = 250;

/**
 * `rate` tokens a second, paced through the second: at most `limit` tokens in any window of
 * `1000 × limit / rate` ms, `limit` the largest divisor of the rate up to a tenth of it. Every
 * second is then a whole number of windows, so any second holds at most `rate` tokens, and a
 * busy budget hands them out in small groups (40/s: 4 every 100 ms) instead of all at the start
 * of a second.
 */
export function perSecond(rate: number): BudgetShape {
  if (!Number.isInteger(rate) || rate < 1) throw new RangeError(`A per-second budget must be a whole number of at least 1, got ${rate}`);
  let limit = Math.max(1, Math.floor(rate / 10));
  while (rate % limit !== 0) limit--;
  return { limit, windowMs: (1000 * limit) / rate };
}

/**
 * A call budget shared by every replica of every service, kept in Postgres (`rate_budget_book`,
 * migration 1764370000000, ADR 0033). Two ways to spend it:
 * - `book(n, 0)` and `giveBack`: take up to n tokens now or be refused with a Retry-After — the
 *   gateway's per-credential leases (ADR 0021) are this with a 62.5 s window;
 * - `take(maxWaitMs)`: one token, waiting for its turn — first come, first served across the
 *   cluster — for a call that must wait rather than fail (Secrets Manager writes).
 * Only public TypeORM APIs: one `DataSource.query` per booking.
 */
export class SharedRateBudget {
  constructor(
    private readonly dataSource: DataSource,
    readonly name: string,
    readonly shape: BudgetShape,
  ) {
    if (!Number.isInteger(shape.limit) || shape.limit < 1 || !(shape.windowMs > 0)) throw new RangeError(`Budget "${name}" needs a limit of at least 1 and a positive window`);
  }

  /** One round trip: up to `wanted` tokens at the earliest moment the budget has room, if that is within `horizonMs`. */
  async book(wanted: number, horizonMs: number): Promise<Booking> {
    const rows: { leaseId: string | null; granted: number; startsInMs: number | null; startsAtMs: number | null; retryAfterMs: number }[] = await this.dataSource.query(
      `SELECT lease_id::text AS "leaseId", granted, starts_in_ms AS "startsInMs", starts_at_ms AS "startsAtMs", retry_after_ms AS "retryAfterMs"
         FROM rate_budget_book($1, $2, $3, $4, $5)`,
      [this.name, wanted, this.shape.limit, this.shape.windowMs, Math.max(0, horizonMs)],
    );
    const [row] = rows;
    if (!row || row.leaseId === null || row.granted <= 0) return { booked: false, retryAfterMs: row?.retryAfterMs ?? this.shape.windowMs };
    return { booked: true, granted: row.granted, leaseId: row.leaseId, startsInMs: row.startsInMs ?? 0, startsAtMs: row.startsAtMs ?? 0 };
  }

  /** Gives back what a lease did not use, so the window has room for others again. */
  async giveBack(leaseId: string, used: number): Promise<void> {
    await this.dataSource.query('UPDATE rate_budget_leases SET tokens = $2 WHERE id = $1 AND tokens > $2', [leaseId, used]);
  }

  /**
   * Waits for one token, in booking order across every holder of the budget, and resolves with
   * the milliseconds waited when it is this caller's turn; throws RateBudgetExhaustedError at
   * once when the budget is booked further ahead than `maxWaitMs`. A turn missed by more than
   * `lateAfterMs` is booked again.
   */
  async take(maxWaitMs: number, lateAfterMs = LATE_TURN_MS): Promise<{ waitedMs: number; startsAtMs: number }> {
    const started = Date.now();
    for (;;) {
      const booking = await this.book(1, maxWaitMs - (Date.now() - started));
      if (!booking.booked) throw new RateBudgetExhaustedError(this.name, booking.retryAfterMs);
      // Timed from the answer, not from Postgres' clock: never earlier than the slot, whatever the clocks.
      const slot = Date.now() + booking.startsInMs;
      if (booking.startsInMs > 0) await new Promise((resolve) => setTimeout(resolve, booking.startsInMs));
      if (Date.now() - slot <= lateAfterMs) return { waitedMs: Date.now() - started, startsAtMs: booking.startsAtMs };
    }
  }
}
