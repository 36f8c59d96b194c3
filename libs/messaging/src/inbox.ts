import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { PoolClient } from 'pg';
import { EventEnvelope } from '@keyward/contracts';

export type InboxResult<T> = { duplicate: true } | { duplicate: false; result: T };

const CONSUMER = /^[a-z][a-z0-9-]{0,63}$/;

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
  async runOnce<T>(
    dataSource: DataSource,
    consumer: string,
    event: EventEnvelope,
    work: (tx: EntityManager) => Promise<T>,
  ): Promise<InboxResult<T>> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) {
      // Inside a batch the claim was made for every event at once; a second claim is a duplicate.
      if (!batch.claimed.delete(event.id)) return { duplicate: true };
      return { duplicate: false, result: await work(batch.manager) };
    }
    // BEGIN and the inbox claim travel in one round trip (simple query protocol, so values are
    // escaped literals; the event id and type were checked against the schema already).
    const outcome = await claimThenRun(
      dataSource,
      (client) =>
        `INSERT INTO inbox (consumer, event_id, event_type) VALUES (${client.escapeLiteral(consumer)}, ` +
        `${client.escapeLiteral(event.id)}::uuid, ${client.escapeLiteral(event.type)}) ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`,
      async (manager, claimed) => (claimed.length === 0 ? undefined : { result: await work(manager) }),
    );
    return outcome ? { duplicate: false, result: outcome.result } : { duplicate: true };
  },

  /**
   * `runOnce` for a group of events decided together (a group handler, see `batchPattern`): `work`
   * gets the events not processed before, each once, in the order given. Inside a batch of the same
   * consumer it joins the batch's transaction and claims; otherwise it claims them all with one
   * statement in a transaction of its own.
   */
  async runMany<E extends EventEnvelope, T>(
    dataSource: DataSource,
    consumer: string,
    events: E[],
    work: (tx: EntityManager, fresh: E[]) => Promise<T>,
  ): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) return work(batch.manager, events.filter((e) => batch.claimed.delete(e.id)));
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
    // As in runOnce: BEGIN and the claim in one round trip, the values escaped literals.
    const list = (client: PoolClient, values: string[]) => values.map((v) => client.escapeLiteral(v)).join(', ');
    const outcome = await claimThenRun(
      dataSource,
      (client) =>
        `INSERT INTO inbox (consumer, event_id, event_type)
         SELECT ${client.escapeLiteral(consumer)}, t.id, t.type
         FROM unnest(ARRAY[${list(client, unique.map(([id]) => id))}]::uuid[], ARRAY[${list(client, unique.map(([, type]) => type))}]::text[]) AS t(id, type)
         ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`,
      async (manager, claimed) => ({ result: await batchScope.run({ consumer, manager, claimed: new Set(claimed) }, handle) }),
    );
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
 * BEGIN and an inbox claim in one round trip (the simple query protocol, so the claim's values are
 * escaped literals), then `work` with the ids claimed, then COMMIT — or ROLLBACK when `work`
 * answers undefined (nothing to do) or throws.
 */
async function claimThenRun<T>(
  dataSource: DataSource,
  claim: (client: PoolClient) => string,
  work: (manager: EntityManager, claimed: string[]) => Promise<{ result: T } | undefined>,
): Promise<{ result: T } | undefined> {
  const runner: QueryRunner = dataSource.createQueryRunner();
  const client = (await runner.connect()) as PoolClient;
  let open = false;
  try {
    const results = (await client.query(`BEGIN; ${claim(client)}`)) as unknown as { rows: { event_id: string }[] }[];
    open = true;
    // Tell TypeORM a transaction is open, so a nested transaction() becomes a savepoint.
    Object.assign(runner, { isTransactionActive: true, transactionDepth: 1 });
    const outcome = await work(runner.manager, (results[1]?.rows ?? []).map((r) => r.event_id));
    await client.query(outcome ? 'COMMIT' : 'ROLLBACK');
    open = false;
    return outcome;
  } catch (error) {
    if (open) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    Object.assign(runner, { isTransactionActive: false, transactionDepth: 0 });
    await runner.release();
  }
}
