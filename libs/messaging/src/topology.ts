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

/** Redeliveries without an ack (consumer crashes) before an event is parked, on any queue type. */
export const DELIVERY_LIMIT = 20;

/**
 * The `notifications` queue is read by the integration's other backends, not by keyward; if they
 * never read it, it must not grow until the broker blocks publishers. It keeps the newest 100,000
 * messages for at most 7 days, and what it drops is gone: it has no dead-letter exchange (alerts
 * also go out by webhook, with their own delivery records). See ADR 0016.
 */
export interface NotificationsRetention {
  maxLength: number;
  ttlMs: number;
}
export const NOTIFICATIONS_RETENTION: NotificationsRetention = { maxLength: 100_000, ttlMs: 7 * 24 * 3_600_000 };

/** Subscribers keyward itself consumes (retries, parking, dead-lettering); `notifications` is read by others. */
const WORKER_SUBSCRIBERS = (Object.keys(SUBSCRIPTIONS) as Subscriber[]).filter((s) => s !== 'notifications');

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
  /**
   * A direct exchange per worker: `retry` routes to its queue, `parked` to its parking queue. Its
   * broker user may write there and to no other subscriber's (ADRs 0013, 0015); nobody writes to
   * the default exchange, which reaches every queue by name.
   */
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

/** What a declaration found: queues that already existed with other arguments were kept as they are. */
export interface TopologyReport {
  queueType: QueueType;
  /** Queues kept with their existing arguments (policies still apply to them). */
  kept: string[];
  /** Queues known to be classic although quorum was asked for (declared so earlier). */
  classicKept: string[];
}

/** The broker refused quorum queues themselves (not one queue's arguments). */
export class QuorumUnavailableError extends Error {
  constructor(refusal: unknown) {
    super(`quorum queues are not available: ${(refusal as Error)?.message ?? refusal}`);
    this.name = 'QuorumUnavailableError';
  }
}

interface ChannelSource {
  createChannel(): Promise<Channel>;
}

/**
 * The arguments a queue gets when it is first declared. Only what a policy cannot set, or what
 * development needs without the setup step; limits that may change live in policies too
 * (`topologyPolicies`), because an existing queue's arguments can never change (ADR 0016).
 */
export function queueArguments(names: TopologyNames, subscriber: Subscriber, queueType: QueueType, retention = NOTIFICATIONS_RETENTION): Record<string, unknown> {
  if (subscriber === 'notifications') {
    return {
      'x-queue-type': queueType,
      'x-max-length': retention.maxLength,
      'x-overflow': 'drop-head',
      'x-message-ttl': retention.ttlMs,
    };
  }
  return {
    'x-queue-type': queueType,
    'x-dead-letter-exchange': names.deadLetterExchange,
    'x-dead-letter-routing-key': names.parkedRoutingKey(subscriber),
    ...(queueType === 'quorum' ? { 'x-delivery-limit': DELIVERY_LIMIT } : {}),
  };
}

/**
 * Declares the whole topology (every subscriber's queues), so any service can start first and
 * no event is unroutable for lack of a queue. Idempotent, and never stopped by a queue that an
 * older version declared with other arguments: that queue is kept as it is and reported.
 */
export async function declareTopology(model: ChannelSource, names: TopologyNames, queueType: QueueType, retention: NotificationsRetention = NOTIFICATIONS_RETENTION): Promise<TopologyReport> {
  const report: TopologyReport = { queueType, kept: [], classicKept: [] };
  const open = async (): Promise<Channel> => {
    const c = await model.createChannel();
    c.on('error', () => undefined); // a refusal closes the channel; the awaited call reports it
    return c;
  };
  let channel = await open();
  const assertQueue = async (queue: string, args: Record<string, unknown>): Promise<void> => {
    try {
      await channel.assertQueue(queue, { durable: true, arguments: args });
    } catch (error) {
      const message = String((error as Error)?.message ?? error);
      if (/inequivalent arg/i.test(message)) {
        report.kept.push(queue);
        if (args['x-queue-type'] === 'quorum' && (await existingQueueType(open, queue, args, message)) === 'classic') report.classicKept.push(queue);
      } else if (args['x-queue-type'] === 'quorum' && /PRECONDITION_FAILED|NOT_IMPLEMENTED|COMMAND_INVALID/i.test(message)) {
        throw new QuorumUnavailableError(error);
      } else {
        throw error;
      }
      channel = await open(); // the refusal closed the channel
    }
  };

  await channel.assertExchange(names.exchange, 'topic', { durable: true });
  await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
  for (const subscriber of Object.keys(SUBSCRIPTIONS) as Subscriber[]) {
    const queue = names.queue(subscriber);
    await assertQueue(queue, queueArguments(names, subscriber, queueType, retention));
    for (const type of SUBSCRIPTIONS[subscriber]) await channel.bindQueue(queue, names.exchange, type);
    if (subscriber === 'notifications') continue; // read by others: no retries, no parking

    const parked = names.parkedQueue(subscriber);
    await assertQueue(parked, { 'x-queue-type': queueType });
    await channel.bindQueue(parked, names.deadLetterExchange, names.parkedRoutingKey(subscriber));

    // The subscriber's own door for copies of events it already received: retries and parking.
    const redelivery = names.redeliveryExchange(subscriber);
    await channel.assertExchange(redelivery, 'direct', { durable: true });
    await channel.bindQueue(queue, redelivery, REDELIVERY_ROUTES.retry);
    await channel.bindQueue(parked, redelivery, REDELIVERY_ROUTES.parked);
  }
  await channel.close().catch(() => undefined);
  return report;
}

/**
 * The type of a queue that exists with other arguments. AMQP cannot read a queue's arguments,
 * but each refusal names the first differing one and its current value: adopt it and declare
 * again until the declaration matches (the type is then known) or the refusal names the type.
 */
async function existingQueueType(open: () => Promise<Channel>, queue: string, declared: Record<string, unknown>, refusal: string): Promise<QueueType | 'unknown'> {
  const args = { ...declared };
  let message = refusal;
  for (let attempt = 0; attempt < 12; attempt++) {
    if (/inequivalent arg 'x-queue-type'/i.test(message)) return /current is '?quorum'?/i.test(message) ? 'quorum' : 'classic';
    const found = /inequivalent arg '([^']+)'.*but current is (none|the value '([^']*)' of type '(\w+)')/i.exec(message);
    if (!found) return 'unknown';
    const [, name, , value, type] = found;
    if (value === undefined) delete args[name];
    else args[name] = type === 'longstr' ? value : Number(value);
    const channel = await open();
    try {
      await channel.assertQueue(queue, { durable: true, arguments: args });
      await channel.close().catch(() => undefined);
      return args['x-queue-type'] === 'quorum' ? 'quorum' : 'classic';
    } catch (error) {
      message = String((error as Error)?.message ?? error);
    }
  }
  return 'unknown';
}

/** Routing keys on a subscriber's redelivery exchange. */
export const REDELIVERY_ROUTES = { retry: 'retry', parked: 'parked' } as const;

export interface QueuePolicy {
  name: string;
  pattern: string;
  definition: Record<string, string | number>;
  priority: number;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The limits of a prefix's queues as RabbitMQ policies, set by the setup step
 * (`npm run broker:setup`). A policy applies to queues that already exist, so changed limits
 * reach an existing broker without redeclaring anything (ADR 0016). One policy per queue, with
 * patterns that never overlap.
 */
export function topologyPolicies(names: TopologyNames, retention = NOTIFICATIONS_RETENTION): QueuePolicy[] {
  const p = escapeRegExp(names.prefix);
  const policies: QueuePolicy[] = [
    {
      name: `${names.prefix}.notifications`,
      pattern: `^${p}\\.notifications$`,
      definition: { 'max-length': retention.maxLength, overflow: 'drop-head', 'message-ttl': retention.ttlMs, 'delivery-limit': DELIVERY_LIMIT },
      priority: 10,
    },
    {
      // Only on brokers from before ADR 0016, whose notifications queue dead-letters by argument.
      name: `${names.prefix}.notifications.parked`,
      pattern: `^${p}\\.notifications\\.parked$`,
      definition: { 'max-length': retention.maxLength, overflow: 'drop-head', 'message-ttl': retention.ttlMs },
      priority: 10,
    },
  ];
  for (const subscriber of WORKER_SUBSCRIBERS) {
    policies.push({
      name: `${names.prefix}.${subscriber}`,
      pattern: `^${p}\\.${subscriber}$`,
      definition: {
        'dead-letter-exchange': names.deadLetterExchange,
        'dead-letter-routing-key': names.parkedRoutingKey(subscriber),
        'delivery-limit': DELIVERY_LIMIT,
      },
      priority: 10,
    });
  }
  return policies;
}

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
