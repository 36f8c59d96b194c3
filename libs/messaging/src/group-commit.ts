import { AsyncResource } from 'node:async_hooks';
import { DataSource } from 'typeorm';
import { compareTenantIds, EventEnvelope } from '@keyward/contracts';
import { inTransactionStartedWithEach, NamedLock, pipelinedIn, PipelinedStatement } from '@keyward/persistence';
import { claimStatement, CollectedEffects, InboxResult, InboxWork, runAlone } from './inbox-transaction';
import { CommittedEvents } from './outbox';

export interface GroupCommitLimits {
  /** Group transactions of one consumer open at once; a call that finds fewer starts one at once. */
  maxInFlight: number;
  /** Events one group transaction takes from the queue. */
  maxSize: number;
}

const DEFAULT_LIMITS: GroupCommitLimits = { maxInFlight: 4, maxSize: 64 };

interface Call {
  event: EventEnvelope;
  lock?: NamedLock;
  read?: PipelinedStatement;
  /** Bound to the caller's async context (its correlation id), wherever the group runs it. */
  work: InboxWork<unknown>;
  settle: (outcome: Promise<InboxResult<unknown>>) => void;
}

/**
 * Group commit for one (data source, consumer): `runOnce` calls that arrive while the consumer's
 * transactions are all busy wait, and go together in the next one: one claim, one commit for
 * the group (ADR 0039). No timer: calls that find a free slot start at the end of their turn of
 * the event loop, together (the deliveries of one network read are one group, not one transaction
 * each until the slots are full), so at low load a group is one event and it waits for nothing
 * but the turn to end (ADR 0058). If anything of a group fails, the group rolls back and
 * each of its events runs alone, as without grouping: one event never changes another's outcome.
 */
class GroupCommit {
  private readonly queue: Call[] = [];
  private inFlight = 0;
  private startScheduled = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly consumer: string,
    public limits: GroupCommitLimits,
  ) {}

  run<T>(event: EventEnvelope, work: InboxWork<T>, lock: NamedLock | undefined, read: PipelinedStatement | undefined): Promise<InboxResult<T>> {
    return new Promise<InboxResult<T>>((resolve, reject) => {
      const settle = (outcome: Promise<InboxResult<unknown>>) => void outcome.then((r) => resolve(r as InboxResult<T>), reject);
      // Not `AsyncResource.bind`: it makes two deprecation wrappers per call (~10 µs an event).
      const caller = new AsyncResource('keyward.group-commit');
      const bound: InboxWork<unknown> = (tx, effects, rows) => caller.runInAsyncScope(work, undefined, tx, effects, rows);
      this.queue.push({ event, lock, read, work: bound, settle });
      // All slots busy: the call goes with the next group as soon as one frees up.
      if (this.inFlight < this.limits.maxInFlight) this.startAtTurnEnd();
    });
  }

  private startAtTurnEnd(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    setImmediate(() => {
      this.startScheduled = false;
      this.next();
    });
  }

  private next(): void {
    while (this.inFlight < this.limits.maxInFlight && this.queue.length > 0) {
      const group = this.queue.splice(0, this.limits.maxSize);
      this.inFlight++;
      void this.commit(group).finally(() => {
        this.inFlight--;
        this.next();
      });
    }
  }

  private async commit(group: Call[]): Promise<void> {
    if (group.length === 1) return this.alone(group[0]);
    // By tenant, then as they came: concurrent groups take the locks their handlers take
    // (the audit chain's, row locks of one tenant) in one order.
    const ordered = [...group].sort((a, b) => compareTenantIds(a.event.tenantId, b.event.tenantId));
    let outcomes: Map<Call, InboxResult<unknown>>;
    try {
      // A handler's read goes with the claim when no earlier event of the group is its tenant's
      // (reads are about the event's tenant: nothing before it in the group changes what it sees);
      // otherwise just before its work, after the earlier handlers' writes.
      const tenants = new Set<string>();
      const early = new Map<Call, number>();
      const first: (string | PipelinedStatement)[] = [claimStatement(this.consumer, ordered)];
      for (const call of ordered) {
        if (call.read && !tenants.has(call.event.tenantId)) early.set(call, first.push(call.read) - 1);
        tenants.add(call.event.tenantId);
      }
      const effects: CollectedEffects[] = [];
      const committed = await inTransactionStartedWithEach<Map<Call, InboxResult<unknown>>>(this.dataSource, first, async (manager, rowsOfEach) => {
        const claimed = new Set((rowsOfEach[0] as { event_id: string }[]).map((r) => r.event_id));
        const results = new Map<Call, InboxResult<unknown>>();
        for (const call of ordered) {
          // A second delivery of the same event in the group: the first one's claim is its claim.
          if (!claimed.delete(call.event.id)) {
            results.set(call, { duplicate: true });
            continue;
          }
          // The earlier handlers' writes first: this one sees them, as if it ran after them alone.
          await CollectedEffects.flushWrites(manager, effects);
          const at = early.get(call);
          const read = at !== undefined ? rowsOfEach[at] : call.read ? (await pipelinedIn(manager, [call.read]))[0] : [];
          const collected = new CollectedEffects();
          results.set(call, { duplicate: false, result: await call.work(manager, collected, read) });
          effects.push(collected);
        }
        return { result: results, atCommit: CollectedEffects.writeUntilCommit(effects, CommittedEvents.active(this.dataSource)) };
      });
      outcomes = committed!.result;
      CollectedEffects.publishCommitted(this.dataSource, effects);
    } catch {
      // Rolled back (a handler threw, a deadlock, the commit failed): each event alone, one
      // after another in this slot, so the consumer never holds more than its transactions.
      for (const call of group) await this.alone(call);
      return;
    }
    for (const call of group) call.settle(Promise.resolve(outcomes.get(call)!));
  }

  private async alone(call: Call): Promise<void> {
    const outcome = runAlone(this.dataSource, this.consumer, call.event, call.work, call.lock, call.read);
    call.settle(outcome);
    await outcome.catch(() => undefined);
  }
}

const committers = new WeakMap<DataSource, Map<string, GroupCommit>>();

/** The group commit of (data source, consumer), made on first use. */
export function groupCommitOf(dataSource: DataSource, consumer: string): GroupCommit {
  let byConsumer = committers.get(dataSource);
  if (!byConsumer) committers.set(dataSource, (byConsumer = new Map<string, GroupCommit>()));
  let committer = byConsumer.get(consumer);
  if (!committer) byConsumer.set(consumer, (committer = new GroupCommit(dataSource, consumer, { ...DEFAULT_LIMITS })));
  return committer;
}
