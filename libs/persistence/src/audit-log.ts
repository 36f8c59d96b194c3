import { createHash } from 'node:crypto';
import { EntityManager } from 'typeorm';
import { AuditEntryEntity } from './entities';
import { LOCKS } from './locks';
import { pipelinedIn, PipelinedStatement } from './pipelined-statements';

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

/** The text an entry's hash covers (after the previous hash and a newline). */
function canonicalBody(e: Omit<AuditEntryEntity, 'id' | 'hash' | 'prevHash'>): string {
  return canonical({
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
}

function entryHash(prevHash: string, e: Omit<AuditEntryEntity, 'id' | 'hash' | 'prevHash'>): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalBody(e)).digest('hex');
}

/** An entry's canonical body around its seq, which only the insert knows (the chain's head + 1): the text before it and after it. */
function bodyAroundSeq(input: AuditEntryInput, occurredAt: Date): [string, string] {
  const body = canonicalBody({
    tenantId: input.tenantId,
    seq: 0,
    occurredAt,
    actor: input.actor,
    action: input.action,
    credentialId: input.credentialId ?? null,
    last4: input.last4 ?? null,
    correlationId: input.correlationId ?? null,
    details: input.details ?? {},
  });
  // The keys are sorted: seq is followed only by tenantId, a string (any quote in it escaped),
  // so the last such marker is the seq's own whatever `details` holds.
  const at = body.lastIndexOf(SEQ_MARKER);
  return [body.slice(0, at + ',"seq":'.length), body.slice(at + ',"seq":0'.length)];
}

const SEQ_MARKER = ',"seq":0,"tenantId":';

/**
 * The tenant's append-only, hash-chained audit log. Appends run inside the caller's transaction
 * so an entry commits with the change it describes; a per-tenant advisory lock orders writers.
 */
export const AuditLog = {
  /** One entry, as `appendAll` with one. */
  async append(manager: EntityManager, input: AuditEntryInput): Promise<void> {
    await AuditLog.appendAll(manager, [input]);
  },

  /** Several entries, in the order given, in one round trip whatever their number (see `appending`). */
  async appendAll(manager: EntityManager, inputs: AuditEntryInput[]): Promise<void> {
    await pipelinedIn(manager, AuditLog.appending(inputs));
  },

  /**
   * The statements that append the entries, in the order given, to their tenants' chains: to send
   * in a round trip the caller makes anyway (it may ride with the commit,
   * `TransactionOutcome.atCommit`). First the audit locks of the entries' tenants (in one order, by
   * name, so two such writers cannot deadlock), then one insert that reads each chain's head and
   * chains the entries to it: seq, previous hash and hash computed by Postgres (`APPEND`), with the
   * hash `entryHash` verifies. The insert is a statement of its own, after the lock: in READ
   * COMMITTED it reads the chain as the last writer committed it, where a read in the locking
   * statement would see it as it was before the wait. No entries: nothing to send.
   */
  appending(inputs: AuditEntryInput[]): PipelinedStatement[] {
    if (inputs.length === 0) return [];
    const locks = [...new Set(inputs.map((i) => i.tenantId))].sort().map(LOCKS.audit);
    const rows = inputs.map((input) => {
      const occurredAt = new Date();
      const [beforeSeq, afterSeq] = bodyAroundSeq(input, occurredAt);
      return { input, occurredAt, beforeSeq, afterSeq };
    });
    return [
      {
        name: 'audit_lock_tenants',
        text: `SELECT pg_advisory_xact_lock(hashtextextended(l.name, l.ns))
       FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS l(name, ns, n)
       ORDER BY l.n`,
        values: [locks.map((l) => l.name), locks.map((l) => String(l.namespace))],
      },
      appendStatement(
        rows.map(({ input, occurredAt, beforeSeq, afterSeq }) => [
          input.tenantId,
          occurredAt.toISOString(),
          input.actor,
          input.action,
          input.credentialId ?? null,
          input.last4 ?? null,
          input.correlationId ?? null,
          JSON.stringify(input.details ?? {}),
          beforeSeq,
          afterSeq,
        ]),
      ),
    ];
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

/**
 * The SQL of an entry's hash, as `entryHash` computes it: SHA-256 of the previous hash, a newline
 * and the canonical body with the seq between its two parts (`bodyAroundSeq`), in hex.
 */
function chainHash(previous: string, beforeSeq: string, seq: string, afterSeq: string): string {
  return `encode(sha256(convert_to(${previous} || E'\\n' || ${beforeSeq} || (${seq})::text || ${afterSeq}, 'UTF8')), 'hex')`;
}

/**
 * The insert of entries given as rows of `APPEND`'s ten columns. One entry, the usual case, has a
 * form of its own whose parameters are its values: the array form's generic plan assumes ten
 * elements and is planned afresh at almost every execution (ADR 0054), and costs Postgres about
 * twice the single form's CPU.
 */
function appendStatement(rows: unknown[][]): PipelinedStatement {
  if (rows.length === 1) return { name: 'audit_append_one', text: APPEND_ONE, values: rows[0] };
  return { name: 'audit_append_chained', text: APPEND, values: rows[0].map((_, column) => rows.map((row) => row[column])) };
}

/** `APPEND` for one entry, its columns as $1…$10. */
const APPEND_ONE = `INSERT INTO audit_log (tenant_id, seq, occurred_at, actor, action, credential_id, last4, correlation_id, details, prev_hash, hash)
  SELECT $1::text, coalesce(h.seq, 0) + 1, $2::timestamptz, $3::text, $4::text, $5::uuid, $6::text, $7::text, $8::jsonb, coalesce(h.hash::text, '${GENESIS}'),
    ${chainHash(`coalesce(h.hash::text, '${GENESIS}')`, '$9::text', 'coalesce(h.seq, 0) + 1', '$10::text')}
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log a WHERE a.tenant_id = $1::text ORDER BY seq DESC LIMIT 1) h ON true`;

/**
 * The entries ($1…$8 their columns, $9 and $10 each one's canonical body before and after its seq;
 * `bodyAroundSeq`), in their order, chained per tenant to the head of its chain: seq one more than
 * the previous entry's, `prev_hash` its hash (the genesis for a chain not started), `hash` the
 * SHA-256 of the previous hash, a newline and the body with the seq in it, as `entryHash` computes it.
 */
const APPEND = `WITH RECURSIVE entry AS (
    SELECT e.*, row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.n) AS k
    FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[])
      WITH ORDINALITY AS e(tenant_id, occurred_at, actor, action, credential_id, last4, correlation_id, details, before_seq, after_seq, n)),
  link(tenant_id, k, seq, prev_hash, hash) AS (
    SELECT t.tenant_id, 0::bigint, coalesce(h.seq, 0), NULL::text, coalesce(h.hash::text, '${GENESIS}')
    FROM (SELECT DISTINCT tenant_id FROM entry) t
    LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log a WHERE a.tenant_id = t.tenant_id ORDER BY seq DESC LIMIT 1) h ON true
    UNION ALL
    SELECT l.tenant_id, l.k + 1, l.seq + 1, l.hash,
      ${chainHash('l.hash', 'e.before_seq', 'l.seq + 1', 'e.after_seq')}
    FROM link l JOIN entry e ON e.tenant_id = l.tenant_id AND e.k = l.k + 1)
  INSERT INTO audit_log (tenant_id, seq, occurred_at, actor, action, credential_id, last4, correlation_id, details, prev_hash, hash)
  SELECT e.tenant_id, l.seq, e.occurred_at, e.actor, e.action, e.credential_id, e.last4, e.correlation_id, e.details, l.prev_hash, l.hash
  FROM entry e JOIN link l ON l.tenant_id = e.tenant_id AND l.k = e.k
  ORDER BY e.n`;
