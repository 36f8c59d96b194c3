import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, EntityManager } from 'typeorm';
import { EventEnvelope } from '@keyward/contracts';
import { escapeLiteral } from 'pg';
import { NamedLock, preparedQuery, startTransactionWith } from '@keyward/persistence';

export type InboxResult<T> = { duplicate: true } | { duplicate: false; result: T };

export interface RunOnceOptions {
  /**
   * An advisory lock the handler needs for the whole transaction (rotation's tenant lock). It is
   * taken in the claim's own statement, after the claim and only when the event is new: the same
   * order as a `Locks.hold` first thing in `work`, one round trip fewer.
   */
  lock?: NamedLock;
}

const CONSUMER = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * The claim, with values as literals: it travels with the transaction's start in one simple
 * query. The consumer name was checked above, the event id and type against the event schema.
 * With a lock, the lock is taken in the same statement, after the claim and only for a new event.
 */
function claimStatement(consumer: string, event: EventEnvelope, lock: NamedLock | undefined): string {
  const claim = `INSERT INTO inbox (consumer, event_id, event_type) VALUES (${escapeLiteral(consumer)}, ${escapeLiteral(event.id)}::uuid, ${escapeLiteral(event.type)})
  ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`;
  if (!lock) return claim;
  return `WITH claimed AS (${claim})
  SELECT event_id, pg_advisory_xact_lock(hashtextextended(${escapeLiteral(lock.name)}, ${Number(lock.namespace)})) FROM claimed`;
}

/** A transaction shared by a batch of deliveries whose inbox rows were claimed up front. */
interface InboxBatch {
  consumer: string;
  manager: EntityManager;
  claimed: Set<string>;
}

const batchScope = new AsyncLocalStorage<InboxBatch>();

/**
 * Idempotent consumption: the handler's writes and the inbox row for (consumer, event id) commit
 * in one transaction. A redelivered event finds its row and changes nothing.
 */
export const Inbox = {
  async runOnce<T>(dataSource: DataSource, consumer: string, event: EventEnvelope, work: (tx: EntityManager) => Promise<T>, options: RunOnceOptions = {}): Promise<InboxResult<T>> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) {
      // Inside a batch the claim was made for every event at once; a second claim is a duplicate.
      if (!batch.claimed.delete(event.id)) return { duplicate: true };
      if (options.lock) await preparedQuery(batch.manager, 'inbox_lock', 'SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [options.lock.name, options.lock.namespace]);
      return { duplicate: false, result: await work(batch.manager) };
    }
    // The start of the transaction and the claim travel in one round trip (ADR 0036).
    const outcome = await inTransactionStartedWith<{ event_id: string }, T>(dataSource, claimStatement(consumer, event, options.lock), async (manager, claimed) =>
      claimed.length === 0 ? undefined : { result: await work(manager) },
    );
    return outcome ? { duplicate: false, result: outcome.result } : { duplicate: true };
  },

  /**
   * `runOnce` for a group of events decided together (a group handler, see `batchPattern`): `work`
   * gets the events not processed before, each once, in the order given. Inside a batch of the same
   * consumer it joins the batch's transaction and claims; otherwise it claims them all with one
   * statement in a transaction of its own.
   */
  async runMany<E extends EventEnvelope, T>(dataSource: DataSource, consumer: string, events: E[], work: (tx: EntityManager, fresh: E[]) => Promise<T>): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer)
      return work(
        batch.manager,
        events.filter((e) => batch.claimed.delete(e.id)),
      );
    return Inbox.runBatch(dataSource, consumer, events, () => Inbox.runMany(dataSource, consumer, events, work));
  },

  /** A cheap look before slow work (a Pleo call); `runOnce` still decides. */
  async seen(dataSource: DataSource, consumer: string, eventId: string): Promise<boolean> {
    const rows = await dataSource.query<unknown[]>('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [consumer, eventId]);
    return rows.length > 0;
  },

  /**
   * Runs `handle` for several events in ONE transaction: their inbox rows are claimed with one
   * statement, each handler's `runOnce` for `consumer` joins the shared transaction, and everything
   * commits together. If anything fails, nothing of the batch commits (the caller then handles the
   * events one by one). Fewer round trips and commits per event, same exactly-once effect.
   */
  async runBatch<T>(dataSource: DataSource, consumer: string, events: EventEnvelope[], handle: () => Promise<T>): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const unique = [...new Map(events.map((e) => [e.id, e.type])).entries()];
    const list = (values: string[]) => values.map((v) => escapeLiteral(v)).join(', ');
    // As in runOnce: the start and the claim in one round trip, the values escaped literals.
    const claim = `INSERT INTO inbox (consumer, event_id, event_type)
      SELECT ${escapeLiteral(consumer)}, t.id, t.type
      FROM unnest(ARRAY[${list(unique.map(([id]) => id))}]::uuid[], ARRAY[${list(unique.map(([, type]) => type))}]::text[]) AS t(id, type)
      ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`;
    const outcome = await inTransactionStartedWith<{ event_id: string }, T>(dataSource, claim, async (manager, claimed) => ({
      result: await batchScope.run({ consumer, manager, claimed: new Set(claimed.map((r) => r.event_id)) }, handle),
    }));
    return outcome!.result;
  },

  /** Forgets processed ids older than the retention (a redelivery that late is not expected). */
  async prune(dataSource: DataSource, consumer: string, retentionDays: number): Promise<number> {
    const rows = await dataSource.query<unknown[]>(
      `DELETE FROM inbox WHERE (consumer, event_id) IN (
         SELECT consumer, event_id FROM inbox
         WHERE consumer = $1 AND processed_at < now() - make_interval(days => $2) LIMIT 10000)
       RETURNING 1`,
      [consumer, retentionDays],
    );
    return rows.length;
  },
};

/**
 * TypeORM's own transaction (ADR 0036: it knows the transaction is open, so a nested
 * transaction() or save() inside `work` becomes a savepoint), started together with `first` in
 * one round trip; `work` gets `first`'s rows. Commits, or rolls back when `work` answers
 * undefined (nothing to do) or throws.
 */
async function inTransactionStartedWith<R, T>(
  dataSource: DataSource,
  first: string,
  work: (manager: EntityManager, rows: R[]) => Promise<{ result: T } | undefined>,
): Promise<{ result: T } | undefined> {
  const runner = dataSource.createQueryRunner();
  try {
    const rows = await startTransactionWith<R>(runner, first);
    const outcome = await work(runner.manager, rows);
    if (outcome) await runner.commitTransaction();
    else await runner.rollbackTransaction();
    return outcome;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
