import { EntityManager } from 'typeorm';

/**
 * The per-tenant advisory locks, in one place so that what serialises with what is visible.
 * All are transaction-scoped: released at commit or rollback.
 *
 * Order, where a transaction takes several: current key → submission → audit. Nothing takes
 * them the other way round, so they cannot deadlock.
 */
/** The current-key lock's name and namespace, for those who hold it from outside a service (the chaos suite). */
export const CURRENT_KEY_LOCK = { namespace: 11, name: (tenantId: string) => `current-key:${tenantId}` };

export const TenantLocks = {
  /**
   * One ordering for everything that changes which key is current: rotation's activation,
   * rejection, compromise and uninstall handling, and intake's compromise and uninstall
   * requests. A request therefore sees every activation that committed before it, and an
   * activation that runs after it sees its revocations (ADR 19).
   */
  async currentKey(tx: EntityManager, tenantId: string): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [CURRENT_KEY_LOCK.name(tenantId), CURRENT_KEY_LOCK.namespace]);
  },
};
