import { createHash } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { AuditEntryEntity } from './entities';
import { LOCKS } from './locks';
import { pipelinedIn, PipelinedStatement } from './pipelined-statements';
import { oneOrMany } from './one-or-many';

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

/** What an incremental verification did: from the tenant's checkpoint to the newest entry. */
export interface IncrementalChainReport extends AuditChainReport {
  /** Entries whose hash this verification computed (the checkpoint's own entry included). */
  checkedEntries: number;
  /** The chain is verified from the first entry through this seq (earlier reads and this one). */
  verifiedThroughSeq: number;
}

export interface AuditPage {
  /** Newest first. */
  entries: AuditEntryEntity[];
  /** Pass as `beforeSeq` for the next (older) page; null on the last page. */
  nextBeforeSeq: number | null;
  /** Every entry of the page matches its own hash and links to its neighbours. */
  ok: boolean;
  brokenAtSeq?: number;
}

/** Hashes one call verifies at most beyond the checkpoint; the next call carries on from there. */
const MAX_ENTRIES_PER_VERIFICATION = 10_000;

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
/** The entry that follows `last` in its tenant's chain, with its hash. */
function chained(last: { seq: number; hash: string }, input: AuditEntryInput) {
  const entry = {
    tenantId: input.tenantId,
    seq: last.seq + 1,
    occurredAt: new Date(),
    actor: input.actor,
    action: input.action,
    credentialId: input.credentialId ?? null,
    last4: input.last4 ?? null,
    correlationId: input.correlationId ?? null,
    details: input.details ?? {},
  };
  return { ...entry, prevHash: last.hash, hash: entryHash(last.hash, entry) };
}

export const AuditLog = {
  /** One entry, as `appendAll` with one. */
  async append(manager: EntityManager, input: AuditEntryInput): Promise<void> {
    await AuditLog.appendAll(manager, [input]);
  },

  /** Several entries, in the order given, in two round trips whatever their number (see `chain`). */
  async appendAll(manager: EntityManager, inputs: AuditEntryInput[]): Promise<void> {
    await pipelinedIn(manager, await AuditLog.chain(manager, inputs));
  },

  /**
   * The entries chained to their tenants' heads, as the insert to send next (it may ride with the
   * commit, `TransactionOutcome.atCommit`). One round trip here, with `before` first in it: the
   * audit locks of the entries' tenants (in one order, by name, so two such writers cannot
   * deadlock), then the head of each tenant's chain. The head is read by a statement of its own,
   * after the lock: a read in the locking statement would see the chain as it was before the wait.
   * No entries: only `before` is sent, and nothing is left to insert.
   */
  async chain(manager: EntityManager, inputs: AuditEntryInput[], before: PipelinedStatement[] = []): Promise<PipelinedStatement[]> {
    if (inputs.length === 0) {
      if (before.length > 0) await pipelinedIn(manager, before);
      return [];
    }
    const heads = AuditLog.headsOf([...new Set(inputs.map((i) => i.tenantId))]);
    const answers = await pipelinedIn(manager, [...before, ...heads]);
    return [AuditLog.chainedInsert(inputs, answers[answers.length - 1])];
  },

  /**
   * The statements that lock the tenants' audit chains (in one order, by name, so two such writers
   * cannot deadlock) and then read each chain's head: to send in a round trip the caller makes
   * anyway (a transaction's start). Their last one's rows go to `chainedInsert`. The head is read by
   * a statement of its own, after the lock: a read in the locking statement would see the chain as
   * it was before the wait.
   */
  headsOf(tenants: string[]): PipelinedStatement[] {
    const locks = [...new Set(tenants)].sort().map(LOCKS.audit);
    return [
      {
        name: 'audit_lock_tenants',
        text: `SELECT pg_advisory_xact_lock(hashtextextended(l.name, l.ns))
       FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS l(name, ns, n)
       ORDER BY l.n`,
        values: [locks.map((l) => l.name), locks.map((l) => String(l.namespace))],
      },
      headsStatement([...new Set(tenants)]),
    ];
  },

  /** The insert of the entries, chained to the heads `headsOf` read (its last statement's rows), in the same transaction. */
  chainedInsert(inputs: AuditEntryInput[], headRows: unknown[]): PipelinedStatement {
    const head = new Map((headRows as { tenant_id: string; seq: number; hash: string }[]).map((h) => [h.tenant_id, { seq: h.seq, hash: h.hash }]));
    const rows = inputs.map((input) => {
      // A tenant whose chain is empty has no head row: its chain starts at the genesis.
      const last = head.get(input.tenantId) ?? { seq: 0, hash: GENESIS };
      const row = chained(last, input);
      head.set(input.tenantId, { seq: row.seq, hash: row.hash });
      return row;
    });
    const column = <K extends keyof (typeof rows)[number]>(key: K) => rows.map((r) => r[key]);
    return {
      name: 'audit_append_all',
      text: `INSERT INTO audit_log (tenant_id, seq, occurred_at, actor, action, credential_id, last4, correlation_id, details, prev_hash, hash)
       SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::text[])`,
      values: [
        column('tenantId'),
        column('seq'),
        rows.map((r) => r.occurredAt.toISOString()),
        column('actor'),
        column('action'),
        column('credentialId'),
        column('last4'),
        column('correlationId'),
        rows.map((r) => JSON.stringify(r.details)),
        column('prevHash'),
        column('hash'),
      ],
    };
  },

  /** The whole chain from the first entry: for operators and tests; readers use `verifyIncrementally`. */
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

  /**
   * Verifies the entries appended since the tenant's checkpoint (the last entry an earlier
   * verification found intact), re-checking the checkpoint's own entry against the hash it
   * recorded, then moves the checkpoint forward. A read costs what was appended since the last
   * read, not the whole log. Entries before the checkpoint are checked again when a page shows
   * them (`page`) and by a full `verify` (ADR 20).
   */
  async verifyIncrementally(manager: EntityManager, tenantId: string, maxEntries = MAX_ENTRIES_PER_VERIFICATION): Promise<IncrementalChainReport> {
    const [checkpoint] = await manager.query<{ seq: number; hash: string }[]>(`SELECT seq, hash FROM audit_checkpoints WHERE tenant_id = $1`, [tenantId]);
    const fromSeq = checkpoint?.seq ?? 0;
    const rows = await manager
      .getRepository(AuditEntryEntity)
      .createQueryBuilder('a')
      .where('a.tenant_id = :tenantId AND a.seq >= :fromSeq', { tenantId, fromSeq })
      .orderBy('a.seq', 'ASC')
      .limit(maxEntries + 1)
      .getMany();
    const [{ latest }] = await manager.query<{ latest: number }[]>(`SELECT coalesce(max(seq), 0)::int AS latest FROM audit_log WHERE tenant_id = $1`, [tenantId]);
    const broken = (seq: number, checked: number): IncrementalChainReport => ({ ok: false, entries: latest, brokenAtSeq: seq, checkedEntries: checked, verifiedThroughSeq: Math.max(0, seq - 1) });

    let prevHash = GENESIS;
    let expectedSeq = 1;
    let checked = 0;
    if (checkpoint) {
      const anchor = rows[0];
      checked += 1;
      // The checkpoint's entry must still be the one verified then: same place, same content.
      if (!anchor || anchor.seq !== checkpoint.seq || anchor.hash.trim() !== checkpoint.hash.trim() || entryHash(anchor.prevHash, anchor) !== anchor.hash) {
        return broken(checkpoint.seq, checked);
      }
      prevHash = anchor.hash;
      expectedSeq = checkpoint.seq + 1;
    }
    let verifiedThrough = fromSeq;
    for (const row of rows.slice(checkpoint ? 1 : 0, (checkpoint ? 1 : 0) + maxEntries)) {
      checked += 1;
      if (row.seq !== expectedSeq || row.prevHash !== prevHash || entryHash(prevHash, row) !== row.hash) return broken(Math.min(row.seq, expectedSeq), checked);
      prevHash = row.hash;
      verifiedThrough = row.seq;
      expectedSeq += 1;
    }
    if (verifiedThrough > fromSeq) {
      await manager.query(
        // eslint-disable-next-line keyward/table-writers -- runs only in intake, the checkpoints' owner: its audit read is the one caller (ADR 0020)
        `INSERT INTO audit_checkpoints (tenant_id, seq, hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, verified_at = now() WHERE audit_checkpoints.seq < EXCLUDED.seq`,
        [tenantId, verifiedThrough, prevHash],
      );
    }
    return { ok: true, entries: latest, checkedEntries: checked, verifiedThroughSeq: verifiedThrough };
  },

  /**
   * One page, newest first, older than `beforeSeq` (a cursor from the previous page). Each entry
   * of the page is checked against its own hash and linked to its neighbours, the oldest one to
   * the entry before it, so whatever a reader is shown has been verified.
   */
  async page(manager: EntityManager, tenantId: string, options: { since?: Date; limit?: number; beforeSeq?: number } = {}): Promise<AuditPage> {
    const limit = Math.min(options.limit ?? 200, 1000);
    const query = manager
      .getRepository(AuditEntryEntity)
      .createQueryBuilder('a')
      .where('a.tenant_id = :tenantId', { tenantId })
      .orderBy('a.seq', 'DESC')
      .limit(limit + 1);
    if (options.beforeSeq !== undefined) query.andWhere('a.seq < :beforeSeq', { beforeSeq: options.beforeSeq });
    if (options.since) query.andWhere('a.occurred_at >= :since', { since: options.since });
    const rows = await query.getMany();
    const entries = rows.slice(0, limit);
    const nextBeforeSeq = rows.length > limit ? entries[entries.length - 1].seq : null;
    const oldest = entries[entries.length - 1];
    const previous = oldest && oldest.seq > 1 ? await manager.getRepository(AuditEntryEntity).findOne({ where: { tenantId, seq: oldest.seq - 1 } }) : null;
    // Oldest to newest: each entry's own hash, and its link to the one before.
    const ascending = [...entries].reverse();
    for (const [index, row] of ascending.entries()) {
      const before = index === 0 ? previous : ascending[index - 1];
      const expectedPrev = before ? before.hash : row.seq === 1 ? GENESIS : null;
      if (entryHash(row.prevHash, row) !== row.hash || expectedPrev === null || row.prevHash !== expectedPrev || (before && before.seq !== row.seq - 1)) {
        return { entries, nextBeforeSeq, ok: false, brokenAtSeq: row.seq };
      }
    }
    return { entries, nextBeforeSeq, ok: true };
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

/** Each tenant's chain head (none for a chain not started); one tenant, the usual case, in a form of its own. */
function headsStatement(tenants: string[]): PipelinedStatement {
  return oneOrMany(
    tenants,
    { name: 'audit_chain_head', text: 'SELECT tenant_id, seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1' },
    {
      name: 'audit_chain_heads',
      text: `SELECT t.tenant_id, h.seq, h.hash FROM unnest($1::text[]) AS t(tenant_id)
       CROSS JOIN LATERAL (SELECT seq, hash FROM audit_log a WHERE a.tenant_id = t.tenant_id ORDER BY seq DESC LIMIT 1) h`,
    },
  );
}
