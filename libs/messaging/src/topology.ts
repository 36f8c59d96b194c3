import type { Channel } from 'amqplib';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';

/**
 * Delayed retry tiers per subscriber, in milliseconds. The last tier repeats while a time budget
 * allows. The delay is kept in Postgres (`scheduled_retries`), not in the broker (ADR 0013).
 */
export const RETRY_TIERS: Record<Subscriber, number[]> = {
  validator: [1_000, 5_000, 30_000, 120_000, 600_000],
  rotation: [1_000, 10_000, 60_000],
  monitor: [1_000, 10_000, 60_000],
  notifications: [1_000, 10_000, 60_000],
};

/** Redeliveries without an ack (consumer crashes) before the broker parks a message itself. */
export const DELIVERY_LIMIT = 20;

/**
 * The `notifications` queue is read by the integration's other backends, not by keyward; if they
 * never read it, it must not grow until the broker blocks publishers. It keeps the newest 100,000
 * messages for at most 7 days (alerts also go out by webhook, with their own delivery records).
 */
export const NOTIFICATIONS_RETENTION = { maxLength: 100_000, ttlMs: 7 * 24 * 3_600_000 };

export class TopologyNames {
  constructor(readonly prefix: string) {}

  get exchange(): string {
    return `${this.prefix}.events`;
  }
  get deadLetterExchange(): string {
    return `${this.prefix}.dlx`;
  }
  queue(subscriber: Subscriber): string {
    return `${this.prefix}.${subscriber}`;
  }
  /** A direct exchange per subscriber: `retry` routes to its queue, `parked` to its parking queue. */
  redeliveryExchange(subscriber: Subscriber): string {
    return `${this.prefix}.${subscriber}.redelivery`;
  }
  parkedQueue(subscriber: Subscriber): string {
    return `${this.prefix}.${subscriber}.parked`;
  }
  parkedRoutingKey(subscriber: Subscriber): string {
    return `${subscriber}.parked`;
  }
}

export type QueueType = 'quorum' | 'classic';

/**
 * Declares the whole topology (every subscriber's queues), so any service can start first and
 * no event is unroutable for lack of a queue. Declarations are idempotent, and nothing here
 * conflicts with what older versions declared (their per-delay retry queues are left alone, see
 * `LEGACY_RETRY_QUEUE`), so a broker that still has them does not stop a service from starting.
 */
export async function declareTopology(channel: Channel, names: TopologyNames, queueType: QueueType): Promise<void> {
  await channel.assertExchange(names.exchange, 'topic', { durable: true });
  await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
  for (const subscriber of Object.keys(SUBSCRIPTIONS) as Subscriber[]) {
    const queue = names.queue(subscriber);
    await channel.assertQueue(queue, {
      durable: true,
      arguments: {
        'x-queue-type': queueType,
        'x-dead-letter-exchange': names.deadLetterExchange,
        'x-dead-letter-routing-key': names.parkedRoutingKey(subscriber),
        ...(queueType === 'quorum' ? { 'x-delivery-limit': DELIVERY_LIMIT } : {}),
        ...(subscriber === 'notifications'
          ? { 'x-max-length': NOTIFICATIONS_RETENTION.maxLength, 'x-overflow': 'drop-head', 'x-message-ttl': NOTIFICATIONS_RETENTION.ttlMs }
          : {}),
      },
    });
    for (const type of SUBSCRIPTIONS[subscriber]) await channel.bindQueue(queue, names.exchange, type);

    const parked = names.parkedQueue(subscriber);
    await channel.assertQueue(parked, { durable: true, arguments: { 'x-queue-type': queueType } });
    await channel.bindQueue(parked, names.deadLetterExchange, names.parkedRoutingKey(subscriber));

    // The subscriber's own door for copies of events it already received: retries and parking.
    const redelivery = names.redeliveryExchange(subscriber);
    await channel.assertExchange(redelivery, 'direct', { durable: true });
    await channel.bindQueue(queue, redelivery, REDELIVERY_ROUTES.retry);
    await channel.bindQueue(parked, redelivery, REDELIVERY_ROUTES.parked);
  }
}

/** Routing keys on a subscriber's redelivery exchange. */
export const REDELIVERY_ROUTES = { retry: 'retry', parked: 'parked' } as const;

/**
 * Names of the classic TTL delay queues that versions before ADR 0013 declared
 * (`<prefix>.<subscriber>.retry.<ms>ms`). Nothing declares or publishes to them any more; on an
 * upgraded broker they drain into their subscriber's queue on their own and can then be deleted
 * (docs/runbook.md).
 */
export const LEGACY_RETRY_QUEUE = /^.+\.(validator|rotation|monitor|notifications)\.retry\.\d+ms$/;

/** Removes a topology (tests and benchmarks use a prefix of their own). */
export async function deleteTopology(channel: Channel, names: TopologyNames): Promise<void> {
  for (const subscriber of Object.keys(SUBSCRIPTIONS) as Subscriber[]) {
    await channel.deleteQueue(names.queue(subscriber));
    await channel.deleteQueue(names.parkedQueue(subscriber));
    await channel.deleteExchange(names.redeliveryExchange(subscriber));
  }
  await channel.deleteExchange(names.exchange);
  await channel.deleteExchange(names.deadLetterExchange);
}
