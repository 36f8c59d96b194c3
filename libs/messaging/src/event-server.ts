import { CustomTransportStrategy, Server, BaseRpcContext } from '@nestjs/microservices';
import type { Channel, ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import { lastValueFrom } from 'rxjs';
import { AnyEvent, EventSchemaError, Subscriber, parseEvent } from '@keyward/contracts';
import { KeywardLogger, Metrics, secretRegistry, withCorrelation } from '@keyward/observability';
import { AmqpConnection } from './amqp-connection';
import { PermanentEventError } from './event-errors';
import { declareRetryQueue, RETRY_TIERS } from './topology';

export const ATTEMPT_HEADER = 'x-keyward-attempt';
export const FIRST_FAILURE_HEADER = 'x-keyward-first-failure-at';
export const LAST_ERROR_HEADER = 'x-keyward-last-error';

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
}

export interface AmqpEventServerOptions {
  connection: AmqpConnection;
  subscriber: Subscriber;
  prefetch: number;
  logger: KeywardLogger;
  metrics: Metrics;
  retry?: RetryPolicy;
}

/**
 * The Nest transport for keyward's workers. Unlike the stock RMQ transport it acks only after the
 * handler finished, never acks on a channel that died meanwhile (the broker redelivers and the
 * inbox drops the duplicate), retries a failed event through delay queues and parks it after the
 * last tier, with its headers and body intact. Retries and parking are published with confirms
 * before the original is acked, so a crash at any point loses nothing.
 */
export class AmqpEventServer extends Server implements CustomTransportStrategy {
  private channel?: Channel;
  private consumerTag?: string;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly consumed;
  private readonly duration;

  constructor(private readonly options: AmqpEventServerOptions) {
    super();
    this.consumed = options.metrics.counter('keyward_events_consumed_total', 'Events handled, by type and outcome', ['type', 'outcome']);
    this.duration = options.metrics.histogram('keyward_event_handler_seconds', 'Handler duration', ['type'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  }

  listen(callback: (...args: unknown[]) => void): void {
    const { connection } = this.options;
    connection.on('ready', () => void this.consume().catch((e) => this.options.logger.error('Could not start consuming', { err: e })));
    connection.on('lost', () => {
      this.channel = undefined;
    });
    if (connection.connected) {
      this.consume().then(() => callback(), (error) => callback(error));
    } else {
      callback();
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    // Finish what is in hand before the process exits; the rest stays in the queue.
    await Promise.allSettled([...this.inFlight]);
    this.channel = undefined;
    if (channel) await channel.close().catch(() => undefined);
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
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.prefetch(prefetch);
    for (const delay of this.options.retry?.tiersMs ?? []) await declareRetryQueue(channel, connection.names, subscriber, delay);
    this.channel = channel;
    const { consumerTag } = await channel.consume(connection.names.queue(subscriber), (msg) => {
      if (!msg) return; // consumer cancelled by the broker (queue deleted); reconnect logic takes over
      const work = this.handle(channel, msg).catch((error) =>
        this.options.logger.error('Unexpected failure while settling a message', { err: error }),
      );
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    });
    this.consumerTag = consumerTag;
    this.options.logger.info('Consuming events', { queue: connection.names.queue(subscriber), prefetch });
  }

  private async handle(channel: Channel, msg: ConsumeMessage): Promise<void> {
    let event: AnyEvent;
    try {
      event = parseEvent(JSON.parse(msg.content.toString('utf8')));
    } catch (error) {
      // Never retried: it will not parse any better. Dead-lettered to the parking queue as is.
      const reason = error instanceof EventSchemaError ? error.message : 'not JSON';
      this.options.logger.error('Unreadable event parked', { reason, messageId: msg.properties.messageId });
      this.consumed.inc({ type: String(msg.properties.type ?? 'unknown').slice(0, 64), outcome: 'invalid' });
      if (this.channel === channel) channel.nack(msg, false, false);
      return;
    }

    const headers = msg.properties.headers ?? {};
    const delivery: DeliveryInfo = {
      attempt: Number(headers[ATTEMPT_HEADER] ?? 0) + 1,
      firstFailureAt: headers[FIRST_FAILURE_HEADER] ? new Date(String(headers[FIRST_FAILURE_HEADER])) : undefined,
      redelivered: msg.fields.redelivered,
    };
    const handler = this.getHandlerByPattern(event.type);
    if (!handler) {
      this.options.logger.warn('No handler for event type; acknowledged', { type: event.type, eventId: event.id });
      if (this.channel === channel) channel.ack(msg);
      return;
    }

    const stopTimer = this.duration.startTimer({ type: event.type });
    try {
      await withCorrelation({ correlationId: event.correlationId, tenantId: event.tenantId, eventId: event.id }, async () => {
        const result = await handler(event, new AmqpEventContext([msg, delivery]));
        await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
      });
      stopTimer();
      this.consumed.inc({ type: event.type, outcome: 'ok' });
      // A channel that died while the handler ran cannot ack this delivery; the broker
      // redelivers it and the inbox makes the second run a no-op.
      if (this.channel === channel) channel.ack(msg);
    } catch (error) {
      stopTimer();
      await this.settleFailure(channel, msg, event, delivery, error);
    }
  }

  private async settleFailure(channel: Channel, msg: ConsumeMessage, event: AnyEvent, delivery: DeliveryInfo, error: unknown): Promise<void> {
    const { subscriber, connection, retry } = this.options;
    const tiers = retry?.tiersMs ?? RETRY_TIERS[subscriber];
    const firstFailureAt = delivery.firstFailureAt ?? new Date();
    const elapsed = Date.now() - firstFailureAt.getTime();
    const permanent = error instanceof PermanentEventError;
    const withinBudget = retry?.maxRetryDurationMs !== undefined ? elapsed < retry.maxRetryDurationMs : delivery.attempt <= tiers.length;
    const reason = shortError(error);
    const headers: MessagePropertyHeaders = {
      ...(msg.properties.headers ?? {}),
      [ATTEMPT_HEADER]: delivery.attempt,
      [FIRST_FAILURE_HEADER]: firstFailureAt.toISOString(),
      [LAST_ERROR_HEADER]: reason,
    };
    const properties = { ...msg.properties, headers, persistent: true };
    const ctx = { type: event.type, eventId: event.id, attempt: delivery.attempt, err: error };

    if (this.channel !== channel) return; // the broker will redeliver
    const confirmChannel = channel as unknown as { waitForConfirms(): Promise<void> };
    if (!permanent && withinBudget) {
      const delay = tiers[Math.min(delivery.attempt - 1, tiers.length - 1)];
      this.options.logger.warn('Event handler failed; retrying after a delay', { ...ctx, delayMs: delay });
      channel.sendToQueue(connection.names.retryQueue(subscriber, delay), msg.content, properties);
      this.consumed.inc({ type: event.type, outcome: 'retry' });
    } else {
      this.options.logger.error('Event handler failed; event parked for an operator', { ...ctx, permanent });
      channel.sendToQueue(connection.names.parkedQueue(subscriber), msg.content, properties);
      this.consumed.inc({ type: event.type, outcome: 'parked' });
    }
    try {
      await confirmChannel.waitForConfirms();
      if (this.channel === channel) channel.ack(msg);
    } catch (confirmError) {
      // Not confirmed: keep the original; it comes back (requeued or redelivered after reconnect).
      this.options.logger.warn('Retry publish not confirmed; message requeued', { eventId: event.id, err: confirmError });
      if (this.channel === channel) channel.nack(msg, false, true);
    }
  }
}

function shortError(error: unknown): string {
  const e = error as { code?: unknown; name?: string; message?: string };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return secretRegistry.scrub(`${code}${e?.name ?? 'Error'}: ${e?.message ?? String(error)}`).slice(0, 300);
}
