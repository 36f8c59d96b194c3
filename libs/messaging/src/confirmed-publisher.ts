import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { KeywardLogger } from '@keyward/observability';
import { AmqpConnection } from './amqp-connection';

export interface OutgoingMessage {
  /** What the caller knows the message by (an outbox row, a retry row): returned in the outcome. */
  key: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  options: Options.Publish;
}

export interface BatchOutcome {
  /** Routed to at least one queue and confirmed by the broker. */
  confirmed: string[];
  /** Returned by the broker as unroutable (no queue bound): not stored anywhere. */
  unroutable: string[];
}

/**
 * Publishes batches with publisher confirms and `mandatory`, and says which messages the broker
 * routed and which it returned. The one place keyward's relays (outbox, scheduled retries) talk
 * to a confirm channel. A nack or a lost channel rejects the whole batch: the caller keeps every
 * row for a later try. `keyOf` reads a returned message's key from its properties.
 */
export class ConfirmedPublisher {
  private channel?: ConfirmChannel;
  private readonly returned = new Set<string>();

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly keyOf: (msg: ConsumeMessage) => string | undefined,
    private readonly logger: KeywardLogger,
  ) {
    this.amqp.on('lost', () => (this.channel = undefined));
  }

  async publishBatch(messages: OutgoingMessage[]): Promise<BatchOutcome> {
    const channel = await this.ensureChannel();
    this.returned.clear();
    try {
      for (const m of messages) channel.publish(m.exchange, m.routingKey, m.body, { ...m.options, mandatory: true });
      // Returns for unroutable messages arrive before their confirms.
      await channel.waitForConfirms();
    } catch (error) {
      this.channel = undefined;
      throw error;
    }
    const unroutable = messages.filter((m) => this.returned.has(m.key)).map((m) => m.key);
    const confirmed = messages.filter((m) => !this.returned.has(m.key)).map((m) => m.key);
    this.returned.clear();
    return { confirmed, unroutable };
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  private async ensureChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const channel = await this.amqp.createConfirmChannel();
    channel.on('return', (msg: ConsumeMessage) => {
      const key = this.keyOf(msg);
      if (key !== undefined) this.returned.add(key);
    });
    channel.on('error', (error: Error) => this.logger.warn('Publisher channel error', { err: error }));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    return channel;
  }
}
