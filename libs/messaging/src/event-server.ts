import { randomUUID } from 'node:crypto';
import { CustomTransportStrategy, MessageHandler, Server, BaseRpcContext } from '@nestjs/microservices';
import type { Channel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { lastValueFrom } from 'rxjs';
import type { DataSource } from 'typeorm';
import { AnyEvent, compareTenantIds, EventSchemaError, EventType, Subscriber, parseEvent } from '@keyward/contracts';
import { KeywardLogger, Metrics, PeriodicTask, secretRegistry, withCorrelation } from '@keyward/observability';
import { AmqpConnection } from './amqp-connection';
import { PermanentEventError } from './event-errors';
import { DEPENDENCY_OUTAGE_RETRY_MS, isDependencyUnavailable } from './dependency-errors';
import { GroupedAcks } from './grouped-acks';
import { Inbox } from './inbox';
import { Redeliveries } from './redeliveries';
import { decideOnFailure } from './retry-decision';
import { keywardHeaders, RetryRelay, ScheduledRetries } from './scheduled-retries';
import { DELIVERY_LIMIT, REDELIVERY_ROUTES, RETRY_TIERS } from './topology';

export const ATTEMPT_HEADER = 'x-keyward-attempt';
export const FIRST_FAILURE_HEADER = 'x-keyward-first-failure-at';
const LAST_ERROR_HEADER = 'x-keyward-last-error';
/** Marks one published copy (retry or park) so a broker return can be matched to it. */
const COPY_HEADER = 'x-keyward-copy-id';
/** How long a failed delivery is held while its retry cannot be written (Postgres down) before it is requeued. */
const MAX_HOLD_MS = 5 * 60_000;

export interface DeliveryInfo {
  /** 1 for the first delivery, n for the (n-1)th retry. */
  attempt: number;
  /** When the first failure of this event happened, for handlers with a time budget. */
  firstFailureAt?: Date;
  redelivered: boolean;
}

export class AmqpEventContext extends BaseRpcContext<[ConsumeMessage, DeliveryInfo]> {
  get message(): ConsumeMessage {
    return this.args[0];
  }
  get delivery(): DeliveryInfo {
    return this.args[1];
  }
}

export interface RetryPolicy {
  /** Delays between attempts; defaults to RETRY_TIERS[subscriber]. */
  tiersMs?: number[];
  /** When set, the last tier repeats until this long after the first failure, then the event is parked. */
  maxRetryDurationMs?: number;
  /** Unsettled redeliveries (crashes) before the event is parked; defaults to DELIVERY_LIMIT. */
  deliveryLimit?: number;
}

/**
 * Handle deliveries that arrive together in one database transaction (see `Inbox.runBatch`).
 * For handlers whose work is all in Postgres (the monitor): per-event round trips are what limits
 * throughput. A failing batch is rolled back and its events handled one by one, with the usual
 * retries; retried deliveries are always handled alone.
 */
interface BatchOptions {
  /** The inbox consumer name the handlers use in `Inbox.runOnce`. */
  consumer: string;
  dataSource: DataSource;
  maxSize?: number;
  maxConcurrent?: number;
}

/**
 * The pattern of a handler that decides a whole group of one event type at once, inside a batch's
 * transaction: `@EventPattern(batchPattern('auth.failed'))`, its payload the group's events in the
 * batch's lock order (tenant by tenant). The type's own one-event handler stays: events handled
 * alone (retries, redeliveries, the events of a failed batch) go to it.
 */
export function batchPattern(type: EventType): string {
  return `batch:${type}`;
}

/** Processed event ids this consumer keeps (its inbox rows), pruned hourly. */
interface InboxRetention {
  consumer: string;
  dataSource: DataSource;
  days: number;
}

export interface AmqpEventServerOptions {
  connection: AmqpConnection;
  /** Where delayed retries are scheduled (table `scheduled_retries`, ADR 0013). */
  dataSource: DataSource;
  subscriber: Subscriber;
  prefetch: number;
  logger: KeywardLogger;
  metrics: Metrics;
  retry?: RetryPolicy;
  batch?: BatchOptions;
  inboxRetention?: InboxRetention;
  /** The longest the retry relay sleeps between looks for due retries (ms; RetryRelayOptions.pollIntervalMs). */
  retryPollIntervalMs?: number;
}

interface Delivery {
  channel: Channel;
  msg: ConsumeMessage;
}

/**
 * The Nest transport for keyward's workers. Unlike the stock RMQ transport it acks only after the
 * handler finished, never acks on a channel that died meanwhile (the broker redelivers and the
 * inbox drops the duplicate), schedules a failed event's retry in Postgres (committed before the
 * delivery is acked; its `RetryRelay` republishes it when due) and parks it after the last tier
 * with a confirmed, `mandatory` publish to its parking queue. A copy that was not confirmed or not
 * routed never lets the original be acked, so a crash or a missing queue at any point loses nothing.
 */
export class AmqpEventServer extends Server implements CustomTransportStrategy {
  private channel?: Channel;
  private consumerTag?: string;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly pending: Delivery[] = [];
  private drainScheduled = false;
  private activeBatches = 0;
  private inboxPruner?: PeriodicTask;
  private readonly returnedCopies = new Set<string>();
  private readonly handlers = new Map<string, MessageHandler | undefined>();
  /** Batch mode: each consumer channel's acks, grouped (ADR 0041). */
  private readonly groupedAcks = new WeakMap<Channel, GroupedAcks>();
  private readonly retryRelay: RetryRelay;
  private readonly consumed;
  private readonly duration;

  constructor(private readonly options: AmqpEventServerOptions) {
    super();
    this.consumed = options.metrics.counter('keyward_events_consumed_total', 'Events handled, by type and outcome', ['type', 'outcome']);
    this.duration = options.metrics.histogram('keyward_event_handler_seconds', 'Handler duration', ['type'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    this.retryRelay = new RetryRelay(options.dataSource, options.connection, options.subscriber, options.logger.child({ component: 'retry-relay' }), options.metrics, {
      pollIntervalMs: options.retryPollIntervalMs,
    });
  }

  listen(callback: (...args: unknown[]) => void): void {
    const { connection } = this.options;
    connection.on('ready', () => void this.consume().catch((e) => this.options.logger.error('Could not start consuming', { err: e })));
    connection.on('lost', () => {
      this.channel = undefined;
    });
    const retention = this.options.inboxRetention;
    if (retention) {
      this.inboxPruner = new PeriodicTask({
        round: async () => {
          const pruned = await Inbox.prune(retention.dataSource, retention.consumer, retention.days);
          const counts = await Redeliveries.prune(this.options.dataSource, this.options.subscriber, retention.days);
          if (pruned + counts > 0) this.options.logger.info('Pruned old inbox rows and redelivery counts', { consumer: retention.consumer, pruned, redeliveryCounts: counts });
        },
        intervalMs: 60 * 60_000,
        startImmediately: false,
        onFailure: (err) => this.options.logger.warn('Inbox pruning failed; next round retries', { err }),
        backoff: { initialMs: 60 * 60_000, maxMs: 60 * 60_000 },
      });
      this.inboxPruner.start();
    }
    this.retryRelay.start();
    if (connection.connected) {
      this.consume().then(
        () => callback(),
        (error) => callback(error),
      );
    } else {
      callback();
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.inboxPruner?.stop();
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    // Finish what is in hand before the process exits; the rest stays in the queue.
    await Promise.allSettled([...this.inFlight]);
    if (channel) this.groupedAcks.get(channel)?.close();
    await this.retryRelay.stop();
    this.channel = undefined;
    if (channel) await channel.close().catch(() => undefined);
  }

  override addHandler(pattern: unknown, callback: MessageHandler, isEventHandler?: boolean, extras?: Record<string, unknown>): void {
    this.handlers.clear();
    super.addHandler(pattern, callback, isEventHandler, extras);
  }

  on(): never {
    throw new Error('AmqpEventServer does not support on()');
  }

  unwrap<T>(): T {
    return this.channel as T;
  }

  private async consume(): Promise<void> {
    if (this.stopping) return;
    const { connection, subscriber, prefetch } = this.options;
    const channel = await connection.createConfirmChannel();
    channel.on('error', (error: Error) => this.options.logger.warn('Consumer channel error', { err: error }));
    channel.on('return', (msg: ConsumeMessage) => {
      const copy: unknown = msg.properties.headers?.[COPY_HEADER];
      if (typeof copy === 'string') this.returnedCopies.add(copy);
    });
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    const acks = new GroupedAcks(channel);
    this.groupedAcks.set(channel, acks);
    await channel.prefetch(prefetch);
    this.channel = channel;
    const { consumerTag } = await channel.consume(connection.names.queue(subscriber), (msg) => {
      if (!msg) return; // consumer cancelled by the broker (queue deleted); reconnect logic takes over
      acks.received(msg);
      if (this.options.batch) return this.enqueue({ channel, msg });
      this.track(this.handle(channel, msg));
    });
    this.consumerTag = consumerTag;
    this.options.logger.info('Consuming events', { queue: connection.names.queue(subscriber), prefetch });
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error) => this.options.logger.error('Unexpected failure while settling a message', { err: error }));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private enqueue(delivery: Delivery): void {
    this.pending.push(delivery);
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    // Deliveries of one network read arrive in the same turn: collect them, then batch.
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    const batch = this.options.batch!;
    while (this.pending.length > 0 && this.activeBatches < (batch.maxConcurrent ?? 4)) {
      const group = this.pending.splice(0, batch.maxSize ?? 50);
      this.activeBatches += 1;
      this.track(
        this.handleBatch(group).finally(() => {
          this.activeBatches -= 1;
          this.drain();
        }),
      );
    }
  }

  private async handleBatch(group: Delivery[]): Promise<void> {
    const batch = this.options.batch!;
    const items: { delivery: Delivery; event: AnyEvent; handler: MessageHandler; info: DeliveryInfo }[] = [];
    const alone: Delivery[] = [];
    for (const delivery of group) {
      if (this.channel !== delivery.channel) continue; // from a dead channel: redelivered anyway
      let event: AnyEvent;
      try {
        event = parseEvent(JSON.parse(delivery.msg.content.toString('utf8')));
      } catch {
        alone.push(delivery); // parked by the one-by-one path
        continue;
      }
      const info = deliveryInfo(delivery.msg);
      const handler = this.handlerFor(event.type);
      if (!handler || info.attempt > 1 || info.redelivered) alone.push(delivery);
      else items.push({ delivery, event, handler, info });
    }
    await Promise.all(alone.map((d) => this.handle(d.channel, d.msg)));
    if (items.length === 0) return;

    // One lock order for every batch (tenant by tenant), so concurrent batches do not deadlock.
    items.sort((a, b) => compareTenantIds(a.event.tenantId, b.event.tenantId));
    const stopTimer = this.duration.startTimer({ type: 'batch' });
    try {
      await Inbox.runBatch(
        batch.dataSource,
        batch.consumer,
        items.map((i) => i.event),
        async () => {
          for (const run of this.runsInLockOrder(items)) {
            if (run.batchHandler) {
              // Consecutive events of a type with a group handler: decided together, still in lock order.
              const result: unknown = await run.batchHandler(run.items.map((i) => i.event));
              await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
              continue;
            }
            const [{ event, handler, delivery, info }] = run.items;
            await withCorrelation({ correlationId: event.correlationId, tenantId: event.tenantId, eventId: event.id }, async () => {
              const result: unknown = await handler(event, new AmqpEventContext([delivery.msg, info]));
              await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
            });
          }
        },
      );
    } catch (error) {
      stopTimer();
      this.options.logger.debug('Batch failed; handling its events one by one', { size: items.length, err: error });
      await Promise.all(items.map((i) => this.handle(i.delivery.channel, i.delivery.msg)));
      return;
    }
    stopTimer();
    // Counted per type, not per event: the same figures at a fraction of the label lookups.
    const consumed = new Map<string, number>();
    for (const { event } of items) consumed.set(event.type, (consumed.get(event.type) ?? 0) + 1);
    for (const [type, n] of consumed) this.consumed.inc({ type, outcome: 'ok' }, n);
    // All of one channel (a delivery from a dead channel was skipped above; the broker gives it again).
    const channel = items[0].delivery.channel;
    if (this.channel === channel) this.groupedAcks.get(channel)?.handled(items.map((i) => i.delivery.msg));
  }

  /**
   * The handler of a pattern, looked up once: handlers are all registered before the server
   * listens, and Nest's lookup tries to parse every pattern as JSON, which costs a thrown error
   * per call for a plain event type.
   */
  private handlerFor(pattern: string): MessageHandler | undefined {
    if (!this.handlers.has(pattern)) this.handlers.set(pattern, this.getHandlerByPattern(pattern) ?? undefined);
    return this.handlers.get(pattern);
  }

  /**
   * Splits a batch, in its lock order, into runs: consecutive events of a type with a group handler
   * (`batchPattern`) form one run, every other event is a run of its own. Grouping only consecutive
   * events keeps the tenant-by-tenant order in which the batch takes its locks.
   */
  private runsInLockOrder<T extends { event: AnyEvent }>(items: T[]): { items: T[]; batchHandler?: MessageHandler }[] {
    const runs: { items: T[]; batchHandler?: MessageHandler }[] = [];
    for (const item of items) {
      const batchHandler = this.handlerFor(batchPattern(item.event.type));
      const last = runs[runs.length - 1];
      if (batchHandler && last?.batchHandler === batchHandler) last.items.push(item);
      else runs.push({ items: [item], batchHandler });
    }
    return runs;
  }

  private async handle(channel: Channel, msg: ConsumeMessage): Promise<void> {
    let event: AnyEvent;
    try {
      event = parseEvent(JSON.parse(msg.content.toString('utf8')));
    } catch (error) {
      // Never retried: it will not parse any better. Dead-lettered to the parking queue as is.
      const reason = error instanceof EventSchemaError ? error.message : 'not JSON';
      this.options.logger.error('Unreadable event parked', { reason, messageId: msg.properties.messageId });
      // Anyone may publish, so the label never takes what a message claims (bounded series).
      this.consumed.inc({ type: 'unreadable', outcome: 'invalid' });
      await this.park(channel, msg, { ...keywardHeaders(msg.properties.headers), [LAST_ERROR_HEADER]: shortError(error) }, undefined);
      return;
    }

    const delivery = deliveryInfo(msg);
    if (delivery.redelivered && (await this.overDeliveryLimit(event))) {
      this.options.logger.error('Event delivered too often without being settled (a consumer crashing on it?); parked for an operator', {
        type: event.type,
        eventId: event.id,
      });
      this.consumed.inc({ type: event.type, outcome: 'parked' });
      await this.park(channel, msg, { ...keywardHeaders(msg.properties.headers), [LAST_ERROR_HEADER]: 'delivery_limit: redelivered without being settled' }, event);
      return;
    }
    const handler = this.handlerFor(event.type);
    if (!handler) {
      this.options.logger.warn('No handler for event type; acknowledged', { type: event.type, eventId: event.id });
      this.ack(channel, msg);
      return;
    }

    const stopTimer = this.duration.startTimer({ type: event.type });
    try {
      await withCorrelation({ correlationId: event.correlationId, tenantId: event.tenantId, eventId: event.id }, async () => {
        const result: unknown = await handler(event, new AmqpEventContext([msg, delivery]));
        await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
      });
      stopTimer();
      this.consumed.inc({ type: event.type, outcome: 'ok' });
      // A channel that died while the handler ran cannot ack this delivery; the broker
      // redelivers it and the inbox makes the second run a no-op. Acked with the deliveries
      // handled in the same turn (a group commit's events), in one frame (ADR 0041).
      if (this.channel === channel) this.groupedAcks.get(channel)?.handledThisTurn(msg);
    } catch (error) {
      stopTimer();
      await this.settleFailure(channel, msg, event, delivery, error);
    }
  }

  private async settleFailure(channel: Channel, msg: ConsumeMessage, event: AnyEvent, delivery: DeliveryInfo, error: unknown): Promise<void> {
    const { subscriber, retry } = this.options;
    const tiers = retry?.tiersMs ?? RETRY_TIERS[subscriber];
    const firstFailureAt = delivery.firstFailureAt ?? new Date();
    const permanent = error instanceof PermanentEventError;
    // An outage of Postgres, the broker or the secret backend is not the event's fault: keep it.
    const outage = !permanent && isDependencyUnavailable(error);
    const decision = decideOnFailure(
      { attempt: delivery.attempt, elapsedMs: Date.now() - firstFailureAt.getTime(), permanent, outage },
      { tiersMs: tiers, maxRetryDurationMs: retry?.maxRetryDurationMs, outageBudgetMs: DEPENDENCY_OUTAGE_RETRY_MS },
    );
    const reason = shortError(error);
    const headers = {
      ...keywardHeaders(msg.properties.headers),
      [ATTEMPT_HEADER]: delivery.attempt,
      [FIRST_FAILURE_HEADER]: firstFailureAt.toISOString(),
      [LAST_ERROR_HEADER]: reason,
    };
    const ctx = { type: event.type, eventId: event.id, attempt: delivery.attempt, err: error };
    if (this.channel !== channel) return; // the broker will redeliver

    if (decision.kind === 'retry') {
      this.options.logger.warn(outage ? 'A dependency is unavailable; event kept and retried after a delay' : 'Event handler failed; retrying after a delay', {
        ...ctx,
        delayMs: decision.delayMs,
      });
      const scheduled = await this.scheduleRetry(channel, { subscriber, event, headers, attempt: delivery.attempt, lastError: reason, delayMs: decision.delayMs });
      if (scheduled) {
        this.consumed.inc({ type: event.type, outcome: 'retry' });
        this.ack(channel, msg);
      } else {
        this.requeue(channel, msg);
      }
      return;
    }
    this.options.logger.error('Event handler failed; event parked for an operator', { ...ctx, permanent, why: decision.why });
    await this.park(channel, msg, headers, event);
  }

  /**
   * Commits the retry in Postgres. While Postgres is down the delivery is held (unacked, so the
   * broker keeps it) and the write retried with backoff; false when it could not be written.
   */
  private async scheduleRetry(channel: Channel, retry: Parameters<typeof ScheduledRetries.schedule>[1]): Promise<boolean> {
    const started = Date.now();
    let backoff = 250;
    for (;;) {
      try {
        await ScheduledRetries.schedule(this.options.dataSource, retry);
        this.retryRelay.wake();
        return true;
      } catch (error) {
        if (this.stopping || this.channel !== channel || Date.now() - started > MAX_HOLD_MS) {
          this.options.logger.warn('Retry could not be scheduled; the delivery goes back to the queue', { eventId: retry.event.id, err: error });
          return false;
        }
        if (backoff === 250) this.options.logger.warn('Retry could not be scheduled (Postgres unavailable?); holding the delivery and trying again', { eventId: retry.event.id, err: error });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /**
   * Parks a copy through the subscriber's redelivery exchange, confirmed and `mandatory`. Only a
   * confirmed, routed copy lets the original be acked. When the parking queue is missing, a
   * readable event is kept as a retry in Postgres instead; anything else goes back to the queue.
   */
  /**
   * Counts an unsettled redelivery in Postgres: the delivery limit on any queue type (classic
   * queues have none; a quorum queue's own limit stays as the net below). Fails open: a database
   * outage must not park events.
   */
  private async overDeliveryLimit(event: AnyEvent): Promise<boolean> {
    try {
      const deliveries = await Redeliveries.count(this.options.dataSource, this.options.subscriber, event.id);
      return deliveries > (this.options.retry?.deliveryLimit ?? DELIVERY_LIMIT);
    } catch (error) {
      this.options.logger.warn('Could not count a redelivery; handling it', { eventId: event.id, err: error });
      return false;
    }
  }

  private async park(channel: Channel, msg: ConsumeMessage, headers: Record<string, string | number>, event: AnyEvent | undefined): Promise<void> {
    const { subscriber } = this.options;
    const properties: Options.Publish = {
      messageId: msg.properties.messageId as string | undefined,
      type: msg.properties.type as string | undefined,
      correlationId: msg.properties.correlationId as string | undefined,
      contentType: msg.properties.contentType as string | undefined,
      timestamp: msg.properties.timestamp as number | undefined,
      headers,
      persistent: true,
    };
    let outcome: 'routed' | 'unroutable' | 'failed';
    try {
      outcome = await this.publishCopy(channel, REDELIVERY_ROUTES.parked, msg.content, properties);
    } catch (error) {
      this.options.logger.warn('Parked copy not confirmed; message requeued', { messageId: msg.properties.messageId, err: error });
      outcome = 'failed';
    }
    if (outcome === 'routed') {
      if (event) this.consumed.inc({ type: event.type, outcome: 'parked' });
      this.ack(channel, msg);
      return;
    }
    if (outcome === 'unroutable') {
      this.options.logger.error('Parking queue is missing; event kept instead of parked', { subscriber, messageId: msg.properties.messageId });
      if (event) {
        const tiers = this.options.retry?.tiersMs ?? RETRY_TIERS[subscriber];
        const attempt = Number(headers[ATTEMPT_HEADER] ?? 1);
        const kept = await this.scheduleRetry(channel, { subscriber, event, headers, attempt, lastError: String(headers[LAST_ERROR_HEADER] ?? ''), delayMs: tiers[tiers.length - 1] });
        if (kept) return this.ack(channel, msg);
      } else {
        await new Promise((r) => setTimeout(r, 5_000));
      }
    }
    this.requeue(channel, msg);
  }

  /**
   * Acks one delivery alone, unless its channel died (the broker gives it again and the inbox
   * drops the second run). In batch mode its frame goes first, then it leaves the grouped acks
   * (ADR 0041), so no grouped ack can cover it.
   */
  private ack(channel: Channel, msg: ConsumeMessage): void {
    if (this.channel !== channel) return;
    const acks = this.groupedAcks.get(channel);
    if (acks) acks.settledAlone(msg, () => channel.ack(msg));
    else channel.ack(msg);
  }

  /** Gives one delivery back to the queue, as `ack` does. */
  private requeue(channel: Channel, msg: ConsumeMessage): void {
    if (this.channel !== channel) return;
    const acks = this.groupedAcks.get(channel);
    if (acks) acks.settledAlone(msg, () => channel.nack(msg, false, true));
    else channel.nack(msg, false, true);
  }

  /** Publishes a copy to the subscriber's redelivery exchange and waits for its own confirm. */
  private publishCopy(channel: Channel, route: string, content: Buffer, properties: Options.Publish): Promise<'routed' | 'unroutable'> {
    const copyId = randomUUID();
    const exchange = this.options.connection.names.redeliveryExchange(this.options.subscriber);
    return new Promise((resolve, reject) => {
      (channel as ConfirmChannel).publish(
        exchange,
        route,
        content,
        { ...properties, mandatory: true, headers: { ...(properties.headers as Record<string, unknown>), [COPY_HEADER]: copyId } },
        (err) => {
          if (err) return reject(err instanceof Error ? err : new Error(String(err)));
          // A return for an unroutable copy arrives before its confirm.
          resolve(this.returnedCopies.delete(copyId) ? 'unroutable' : 'routed');
        },
      );
    });
  }
}

function deliveryInfo(msg: ConsumeMessage): DeliveryInfo {
  const headers = msg.properties.headers ?? {};
  return {
    attempt: Number(headers[ATTEMPT_HEADER] ?? 0) + 1,
    firstFailureAt: headers[FIRST_FAILURE_HEADER] ? new Date(String(headers[FIRST_FAILURE_HEADER])) : undefined,
    redelivered: msg.fields.redelivered,
  };
}

function shortError(error: unknown): string {
  const e = error as { code?: unknown; name?: string; message?: string };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return secretRegistry.scrub(`${code}${e?.name ?? 'Error'}: ${e?.message ?? String(error)}`).slice(0, 300);
}
