import type { ConfirmChannel } from 'amqplib';
import { Subscriber } from '@keyward/contracts';
import { ATTEMPT_HEADER, FIRST_FAILURE_HEADER } from './event-server';
import { REDELIVERY_ROUTES, TopologyNames } from './topology';

export interface ParkedEvent {
  messageId: string | undefined;
  type: string | undefined;
  attempts: number;
  lastError: string | undefined;
  content: Buffer;
}

export interface ReplayOptions {
  limit: number;
  /** List only: every message goes back to the parking queue untouched. */
  dryRun?: boolean;
  /** Runs before a message is moved (e.g. clearing the validator's give-up mark); a throw keeps it parked. */
  beforeReplay?: (event: ParkedEvent) => Promise<void>;
}

/**
 * Moves parked events back to their subscriber's queue for an operator, with a fresh retry budget
 * (the attempt headers are dropped, the rest of the headers and the body are kept). Each copy is
 * confirmed by the broker before the parked message is acked, so nothing is lost on the way.
 */
export async function replayParked(channel: ConfirmChannel, names: TopologyNames, subscriber: Subscriber, options: ReplayOptions): Promise<ParkedEvent[]> {
  const seen: ParkedEvent[] = [];
  const held = [];
  let returned: boolean;
  const onReturn = () => (returned = true);
  channel.on('return', onReturn);
  try {
    while (seen.length < options.limit) {
      const msg = await channel.get(names.parkedQueue(subscriber), { noAck: false });
      if (msg === false) break;
      held.push(msg);
      const headers = { ...(msg.properties.headers ?? {}) };
      const event: ParkedEvent = {
        messageId: msg.properties.messageId ? String(msg.properties.messageId) : undefined,
        type: msg.properties.type ? String(msg.properties.type) : undefined,
        attempts: Number(headers[ATTEMPT_HEADER] ?? 0),
        lastError: headers['x-keyward-last-error'] ? String(headers['x-keyward-last-error']) : undefined,
        content: msg.content,
      };
      seen.push(event);
      if (options.dryRun) continue;
      await options.beforeReplay?.(event);
      delete headers[ATTEMPT_HEADER];
      delete headers[FIRST_FAILURE_HEADER];
      headers['x-keyward-replayed-at'] = new Date().toISOString();
      // Through the subscriber's redelivery exchange (the only route its broker user may write), `mandatory`.
      returned = false;
      channel.publish(names.redeliveryExchange(subscriber), REDELIVERY_ROUTES.retry, msg.content, { ...msg.properties, headers, persistent: true, mandatory: true });
      await channel.waitForConfirms();
      if (returned) throw new Error(`${names.queue(subscriber)} is not bound to ${names.redeliveryExchange(subscriber)}; start the service once to declare its topology`);
      channel.ack(msg);
      held.pop();
    }
  } finally {
    // Listed (dry run) or not moved: back to the parking queue, in order.
    for (const msg of held) channel.nack(msg, false, true);
    channel.off('return', onReturn);
  }
  return seen;
}
