import { AsyncLocalStorage } from 'node:async_hooks';
import { DataSource, EntityManager } from 'typeorm';
import { EventEnvelope } from '@keyward/contracts';
import { inTransactionStartedWith, NamedLock, pipelinedIn, PipelinedStatement } from '@keyward/persistence';
import { groupCommitOf, GroupCommitLimits } from './group-commit';
import { pruneConsumerRows } from './consumer-rows';
import { claimStatement, CollectedEffects, InboxEffects, InboxResult, InboxWork, runAlone } from './inbox-transaction';
import { CommittedEvents } from './outbox';

export type { InboxEffects, InboxResult, InboxWork } from './inbox-transaction';
export { CollectedEffects } from './inbox-transaction';
export type { GroupCommitLimits } from './group-commit';

export interface RunOnceOptions {
  /**
   * An advisory lock the handler needs for the whole transaction (rotation's tenant lock). It is
   * taken in the claim's own statement, after the claim and only when the event is new: the same
   * order as a `Locks.hold` first thing in `work`, one round trip fewer.
   */
  lock?: NamedLock;
  /**
   * A read the handler needs first (its rows are `work`'s third argument), sent in the claim's
   * round trip, after the claim and its lock: it sees what the lock's previous holder committed.
   * It must be about the event's tenant only (with group commit it may be sent before the work of
   * other tenants' events of the same transaction) and change nothing (it runs for a duplicate too).
   */
  read?: PipelinedStatement;
  /**
   * false: a transaction of its own, never shared with other events (the path before group
   * commit, kept for the benchmark's baseline).
   */
  groupCommit?: false;
}

const CONSUMER = /^[a-z][a-z0-9-]{0,63}$/;

/** A transaction shared by a batch of deliveries whose inbox rows were claimed up front. */
interface InboxBatch {
  consumer: string;
  manager: EntityManager;
  claimed: Set<string>;
  /** The handlers' outbox events and audit entries, written together before the batch commits. */
  effects: CollectedEffects[];
}

const batchScope = new AsyncLocalStorage<InboxBatch>();

/**
 * Idempotent consumption: the handler's writes and the inbox row for (consumer, event id) commit
 * in one transaction. A redelivered event finds its row and changes nothing. Handlers of one
 * consumer that run at the same time share transactions and commits (group commit, ADR 0039).
 */
export const Inbox = {
  async runOnce<T>(dataSource: DataSource, consumer: string, event: EventEnvelope, work: InboxWork<T>, options: RunOnceOptions = {}): Promise<InboxResult<T>> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) {
      // Inside a batch the claim was made for every event at once; a second claim is a duplicate.
      if (!batch.claimed.delete(event.id)) return { duplicate: true };
      await CollectedEffects.flushWrites(batch.manager, batch.effects);
      const lock: PipelinedStatement[] = options.lock
        ? [{ name: 'inbox_lock', text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', values: [options.lock.name, options.lock.namespace] }]
        : [];
      const answers = await pipelinedIn(batch.manager, [...lock, ...(options.read ? [options.read] : [])]);
      const effects = new CollectedEffects();
      const result = await work(batch.manager, effects, options.read ? answers[answers.length - 1] : []);
      batch.effects.push(effects);
      return { duplicate: false, result };
    }
    // The start of the transaction and the claim travel in one round trip (ADR 0036); calls that
    // arrive while the consumer's transactions are busy share the next one (ADR 0039).
    if (options.groupCommit === false) return runAlone(dataSource, consumer, event, work, options.lock, options.read);
    return groupCommitOf(dataSource, consumer).run(event, work, options.lock, options.read);
  },

  /**
   * How many group transactions (consumer, data source) keeps open at once and how many events
   * one takes (default 4 and 64). Rotation sets the first from its pool (a step may need a
   * second connection for the secret backend).
   */
  limitGroupCommit(dataSource: DataSource, consumer: string, limits: Partial<GroupCommitLimits>): void {
    const committer = groupCommitOf(dataSource, consumer);
    committer.limits = { ...committer.limits, ...limits };
  },

  /**
   * `runOnce` for a group of events decided together (a group handler, see `batchPattern`): `work`
   * gets the events not processed before, each once, in the order given. Inside a batch of the same
   * consumer it joins the batch's transaction and claims; otherwise it claims them all with one
   * statement in a transaction of its own.
   */
  async runMany<E extends EventEnvelope, T>(dataSource: DataSource, consumer: string, events: E[], work: (tx: EntityManager, fresh: E[], effects: InboxEffects) => Promise<T>): Promise<T> {
    if (!CONSUMER.test(consumer)) throw new Error(`Invalid inbox consumer name "${consumer}"`);
    const batch = batchScope.getStore();
    if (batch && batch.consumer === consumer) {
      await CollectedEffects.flushWrites(batch.manager, batch.effects);
      const effects = new CollectedEffects();
      const result = await work(
        batch.manager,
        events.filter((e) => batch.claimed.delete(e.id)),
        effects,
      );
      batch.effects.push(effects);
      return result;
    }
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
    const unique = [...new Map(events.map((e) => [e.id, e])).values()];
    // As in runOnce: the start and the claim in one round trip, the values escaped literals.
    const claim = claimStatement(
      consumer,
      unique.map((event) => ({ event })),
    );
    const effects: CollectedEffects[] = [];
    const outcome = await inTransactionStartedWith<{ event_id: string }, T>(dataSource, claim, async (manager, claimed) => {
      const scope: InboxBatch = { consumer, manager, claimed: new Set(claimed.map((r) => r.event_id)), effects };
      const result = await batchScope.run(scope, handle);
      return { result, atCommit: CollectedEffects.writeUntilCommit(scope.effects, CommittedEvents.active(dataSource)) };
    });
    CollectedEffects.publishCommitted(dataSource, effects);
    return outcome!.result;
  },

  /** Forgets processed ids older than the retention (a redelivery that late is not expected). */
  prune(dataSource: DataSource, consumer: string, retentionDays: number): Promise<number> {
    return pruneConsumerRows(dataSource, 'inbox', consumer, retentionDays);
  },
};
