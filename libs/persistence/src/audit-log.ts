import { createHash } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { AuditEntryEntity } from './entities';

const GENESIS = '0'.repeat(64);

/** Values an audit entry may carry: identifiers and facts, never key material. */
export type AuditDetail = string | number | boolean | null | string[];

export interface AuditEntryInput {
  tenantId: string;
  /** Who or what caused it: `service:intake`, `token:billing`, `install-session`, `event:key.validated`… */
  actor: string;
  action: string;
  credentialId?: string | null;
  last4?: string | null;
  correlationId?: string | null;
  details?: Record<string, AuditDetail>;
}

export interface AuditChainReport {
  ok: boolean;
  entries: number;
  /** The first seq whose hash or link does not match, or where a seq is missing. */
  brokenAtSeq?: number;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function entryHash(prevHash: string, e: Omit<AuditEntryEntity, 'id' | 'hash' | 'prevHash'>): string {
  const body = canonical({
    tenantId: e.tenantId,
    seq: e.seq,
    occurredAt: e.occurredAt.toISOString(),
    actor: e.actor,
    action: e.action,
    credentialId: e.credentialId,
    last4: e.last4,
    correlationId: e.correlationId,
    details: e.details,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * The tenant's append-only, hash-chained audit log. Appends run inside the caller's transaction
 * so an entry commits with the change it describes; a per-tenant advisory lock orders writers.
 */
export const AuditLog = {
  async append(manager: EntityManager, input: AuditEntryInput): Promise<AuditEntryEntity> {
    await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7))', [`audit:${input.tenantId}`]);
    const [last] = (await manager.query('SELECT seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1', [
      input.tenantId,
    ])) as { seq: number; hash: string }[];
    const entry = {
      tenantId: input.tenantId,
      seq: (last?.seq ?? 0) + 1,
      occurredAt: new Date(),
      actor: input.actor,
      action: input.action,
      credentialId: input.credentialId ?? null,
      last4: input.last4 ?? null,
      correlationId: input.correlationId ?? null,
      details: input.details ?? {},
    };
    const prevHash = last?.hash ?? GENESIS;
    const hash = entryHash(prevHash, entry);
    return manager.getRepository(AuditEntryEntity).save({ ...entry, prevHash, hash });
  },

  async verify(manager: EntityManager, tenantId: string): Promise<AuditChainReport> {
    const rows = await manager.getRepository(AuditEntryEntity).find({ where: { tenantId }, order: { seq: 'ASC' } });
    let prevHash = GENESIS;
    for (const [index, row] of rows.entries()) {
      const expectedSeq = index + 1;
      if (row.seq !== expectedSeq || row.prevHash !== prevHash || entryHash(prevHash, row) !== row.hash) {
        return { ok: false, entries: rows.length, brokenAtSeq: Math.min(row.seq, expectedSeq) };
      }
      prevHash = row.hash;
    }
    return { ok: true, entries: rows.length };
  },

  /** Newest first, as incident review reads it. */
  async list(manager: EntityManager, tenantId: string, options: { since?: Date; limit?: number } = {}): Promise<AuditEntryEntity[]> {
    const query = manager
      .getRepository(AuditEntryEntity)
      .createQueryBuilder('a')
      .where('a.tenant_id = :tenantId', { tenantId })
      .orderBy('a.seq', 'DESC')
      .limit(Math.min(options.limit ?? 200, 1000));
    if (options.since) query.andWhere('a.occurred_at >= :since', { since: options.since });
    return query.getMany();
  },
};
