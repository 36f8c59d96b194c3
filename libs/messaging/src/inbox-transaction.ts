import { DataSource, EntityManager } from 'typeorm';
import { EventEnvelope, isCheckedEvent, parseEvent } from '@keyward/contracts';
import { arrayLiteral, AuditEntryInput, AuditLog, inTransactionStartedWithEach, NamedLock, pipelinedIn, PipelinedStatement } from '@keyward/persistence';
import { CommittedEvents, Outbox } from './outbox';

export type InboxResult<T> = { duplicate: true } | { duplicate: false; result: T };

/**
 * What a handler's transaction writes besides its own rows, collected while it runs and written
 * just before the commit: the events and entries of every handler sharing the transaction go in
 * set-based statements (one outbox insert; the audit chains of all their tenants at once).
 */
export interface InboxEffects {
  /** Staged in the outbox with the transaction (checked against its schema now). */
  publish(...events: EventEnvelope[]): void;
  /** Appended to the tenant's hash-chained audit log with the transaction. */
  audit(entry: AuditEntryInput): void;
  /**
   * Writes of the handler's own whose answer it does not read, sent with the effects' round trip
   * (or the commit's) instead of one of their own. Anything that runs after this handler in the
   * same transaction (another event's handler of the group) sees them: they are sent before it.
   */
  write(...statements: PipelinedStatement[]): void;
}

/**
 * A handler's work in the inbox transaction. `read`: the rows of the read the handler asked to
 * send with the claim (`RunOnceOptions.read`); empty without one.
 */
export type InboxWork<T> = (tx: EntityManager, effects: InboxEffects, read: unknown[]) => Promise<T>;

/** One handler's collected effects. */
export class CollectedEffects implements InboxEffects {
  readonly events: EventEnvelope[] = [];
  readonly entries: AuditEntryInput[] = [];
  writes: PipelinedStatement[] = [];
  /** Its events were staged for this process to publish after the commit. */
  publishedByWriter = false;

  publish(...events: EventEnvelope[]): void {
    for (const event of events) this.events.push(isCheckedEvent(event) ? event : parseEvent(event));
  }

  audit(entry: AuditEntryInput): void {
    this.entries.push(entry);
  }

  write(...statements: PipelinedStatement[]): void {
    this.writes.push(...statements);
  }

  /** Once the transaction committed: the events staged for their writer, to the broker. */
  static publishCommitted(dataSource: DataSource, all: CollectedEffects[]): void {
    CommittedEvents.publish(
      dataSource,
      all.filter((e) => e.publishedByWriter).flatMap((e) => e.events),
    );
  }

  /** Sends the writes `all` still hold, now: before another handler of the same transaction runs. */
  static async flushWrites(manager: EntityManager, all: CollectedEffects[]): Promise<void> {
    const writes = all.flatMap((e) => e.writes);
    if (writes.length === 0) return;
    for (const effects of all) effects.writes = [];
    await pipelinedIn(manager, writes);
  }

  /**
   * The effects of `all`, in their order, as statements to ride with the commit
   * (`TransactionOutcome.atCommit`): the handlers' writes, the outbox rows, and the audit entries'
   * locks and chained insert (`AuditLog.appending`). `byWriter`: the caller hands the events to
   * `publishCommitted` once the transaction committed (`CommittedEvents.active`).
   */
  static writeUntilCommit(all: CollectedEffects[], byWriter = false): PipelinedStatement[] {
    // With a publisher in this process, the events go to the broker right after the commit
    // (`publishCommitted`, which the caller sends), and to a relay only if that fails (ADR 0051).
    for (const effects of all) effects.publishedByWriter = byWriter;
    const staging = Outbox.staging(
      all.flatMap((e) => e.events),
      byWriter,
    );
    const writes = [...all.flatMap((e) => e.writes), ...(staging ? [staging] : [])];
    for (const effects of all) effects.writes = [];
    return [...writes, ...AuditLog.appending(all.flatMap((e) => e.entries))];
  }
}

/**
 * The claim of one or more events, a prepared statement that travels with the transaction's start
 * in one round trip (a pipeline), its ids, types and locks bound as arrays. Locks (rotation's
 * tenant lock) are taken in the same statement, only for the events claimed now, each once, in
 * one order (by name): two transactions taking several cannot deadlock on them.
 */
export function claimStatement(consumer: string, claims: { event: EventEnvelope; lock?: NamedLock }[]): PipelinedStatement {
  const values = [consumer, arrayLiteral(claims.map((c) => c.event.id)), arrayLiteral(claims.map((c) => c.event.type))];
  const locked = claims.filter((c) => c.lock);
  if (locked.length === 0) return { name: 'inbox_claim', text: CLAIM, values };
  return {
    name: 'inbox_claim_locking',
    text: CLAIM_LOCKING,
    values: [...values, arrayLiteral(locked.map((c) => c.event.id)), arrayLiteral(locked.map((c) => c.lock!.name)), arrayLiteral(locked.map((c) => Number(c.lock!.namespace)))],
  };
}

/** $1 consumer, $2 event ids, $3 their types: the ids claimed now. */
const CLAIM = `INSERT INTO inbox (consumer, event_id, event_type)
  SELECT $1, t.id, t.type FROM unnest($2::uuid[], $3::text[]) AS t(id, type)
  ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`;

/** CLAIM, then the locks ($4 event ids, $5 lock names, $6 namespaces) of the events claimed now. */
// Postgres evaluates a volatile select list after the ORDER BY's sort: the locks are taken in that order.
const CLAIM_LOCKING = `WITH claimed AS (${CLAIM}),
  held AS (
    SELECT pg_advisory_xact_lock(hashtextextended(l.name, l.ns)) FROM (
      SELECT DISTINCT l.name, l.ns
      FROM unnest($4::uuid[], $5::text[], $6::bigint[]) AS l(id, name, ns)
      WHERE l.id IN (SELECT event_id FROM claimed)) l
    ORDER BY l.name, l.ns)
  SELECT event_id FROM claimed WHERE (SELECT count(*) FROM held) >= 0`;

/** One event in a transaction of its own: the claim (and lock, and the handler's read) with the start, the work, its effects, the commit. */
export async function runAlone<T>(dataSource: DataSource, consumer: string, event: EventEnvelope, work: InboxWork<T>, lock: NamedLock | undefined, read?: PipelinedStatement): Promise<InboxResult<T>> {
  const first = [claimStatement(consumer, [{ event, lock }]), ...(read ? [read] : [])];
  const effects = new CollectedEffects();
  const outcome = await inTransactionStartedWithEach<T>(dataSource, first, async (manager, [claimed, readRows]) => {
    if (claimed.length === 0) return undefined;
    const result = await work(manager, effects, readRows ?? []);
    return { result, atCommit: CollectedEffects.writeUntilCommit([effects], CommittedEvents.active(dataSource)) };
  });
  if (!outcome) return { duplicate: true };
  CollectedEffects.publishCommitted(dataSource, [effects]);
  return { duplicate: false, result: outcome.result };
}
