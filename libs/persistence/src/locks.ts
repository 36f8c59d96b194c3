import { escapeLiteral } from 'pg';
import { EntityManager } from 'typeorm';
import type { PipelinedStatement } from './pipelined-statements';

/** An advisory lock: `pg_advisory_xact_lock(hashtextextended(name, namespace))`. */
export interface NamedLock {
  name: string;
  namespace: number;
}

/**
 * Every advisory lock keyward takes, in one place, so that what serialises with what is visible.
 * All are transaction-scoped (released at commit or rollback), except where the chaos suite holds
 * one from outside with the session-level variant of the same name.
 *
 * Order, where a transaction takes several: current key → submission → audit. Nothing takes
 * them the other way round, so they cannot deadlock. Two more are taken inside SQL functions and
 * nowhere else: `gateway-rate:<credential>` in `gateway_lease_tokens` (migration 1764340000000)
 * and `rate-budget:<name>` in `rate_budget_book` (migration 1764370000000), both namespace 0.
 */
export const LOCKS = {
  /**
   * One ordering for everything that changes which key is current: rotation's activation,
   * rejection, compromise and uninstall handling, and intake's compromise and uninstall
   * requests. A request therefore sees every activation that committed before it, and an
   * activation that runs after it sees its revocations (ADR 19).
   */
  currentKey: (tenantId: string): NamedLock => ({ name: `current-key:${tenantId}`, namespace: 11 }),
  /** Intake's submissions of one tenant: at most one pending at a time decides which is newest. */
  submission: (tenantId: string): NamedLock => ({ name: `submission:${tenantId}`, namespace: 0 }),
  /** Writers of one tenant's hash-chained audit log, one after another. */
  audit: (tenantId: string): NamedLock => ({ name: `audit:${tenantId}`, namespace: 7 }),
  /** One replica sweeps a kind of stuck work at a time (tried, never waited for). */
  reconcilerSweep: (kind: string): NamedLock => ({ name: `reconciler:${kind}`, namespace: 0 }),
  /** One monitor replica claims due probes at a time (tried). */
  probeClaim: (): NamedLock => ({ name: 'keyward:monitor:probe-claim', namespace: 0 }),
  /** One delivery attempt of an alert at a time (tried). */
  alertDelivery: (alertId: string): NamedLock => ({ name: `alert-delivery:${alertId}`, namespace: 0 }),
};

export const Locks = {
  /** Waits for the lock; it is released when the transaction ends. */
  async hold(tx: EntityManager, lock: NamedLock): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [lock.name, lock.namespace]);
  },

  /** `hold` as a statement with its values as literals, to send with the transaction's start (`startTransactionWithEach`). */
  holdStatement(lock: NamedLock): string {
    if (!Number.isSafeInteger(lock.namespace)) throw new Error(`Lock namespace must be an integer, not ${lock.namespace}`);
    return `SELECT pg_advisory_xact_lock(hashtextextended(${escapeLiteral(lock.name)}, ${lock.namespace}))`;
  },

  /** Takes the lock if it is free; false when another transaction holds it. */
  async tryHold(tx: EntityManager, lock: NamedLock): Promise<boolean> {
    const [{ locked }] = await tx.query<{ locked: boolean }[]>(TRY_HOLD, [lock.name, lock.namespace]);
    return locked;
  },

  /** `tryHold` as a statement to send with the transaction's start; it answers one row, `{ locked }`. */
  tryHoldStatement(lock: NamedLock): PipelinedStatement {
    return { name: 'try_hold_lock', text: TRY_HOLD, values: [lock.name, lock.namespace] };
  },
};

const TRY_HOLD = 'SELECT pg_try_advisory_xact_lock(hashtextextended($1, $2)) AS locked';
