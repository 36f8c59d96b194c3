import { ChannelModel, Channel } from 'amqplib';
import { AnyEvent, EventType } from '@keyward/contracts';
import { TopologyNames } from '@keyward/messaging';
import { connectTestBroker, eventually } from './test-env';

/**
 * Binds an exclusive queue to `#` on the events exchange and keeps every message that crossed it,
 * raw, so tests can assert exactly what was published and that no key rode along.
 */
export class EventTap {
  readonly raw: string[] = [];
  /** Properties and headers of every message, in the order of `raw`. */
  readonly properties: string[] = [];
  readonly events: AnyEvent[] = [];
  private connection?: ChannelModel;
  private channel?: Channel;
  private queue?: string;

  constructor(private readonly prefix: string) {}

  async start(): Promise<this> {
    this.connection = await connectTestBroker();
    this.channel = await this.connection.createChannel();
    const names = new TopologyNames(this.prefix);
    await this.channel.assertExchange(names.exchange, 'topic', { durable: true });
    const { queue } = await this.channel.assertQueue('', { exclusive: true, autoDelete: true });
    await this.channel.bindQueue(queue, names.exchange, '#');
    this.queue = queue;
    await this.channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const text = msg.content.toString('utf8');
        this.raw.push(text);
        this.properties.push(JSON.stringify(msg.properties));
        try {
          this.events.push(JSON.parse(text) as AnyEvent);
        } catch {
          /* kept raw */
        }
      },
      { noAck: true },
    );
    return this;
  }

  /** Bodies, properties and headers of every message that crossed the exchange, for canary searches. */
  text(): string {
    return [...this.raw, ...this.properties].join('\n');
  }

  ofType<T extends EventType>(type: T, tenantId?: string): Extract<AnyEvent, { type: T }>[] {
    return this.events.filter((e) => e.type === type && (!tenantId || e.tenantId === tenantId)) as Extract<AnyEvent, { type: T }>[];
  }

  async waitFor<T extends EventType>(type: T, predicate: (e: Extract<AnyEvent, { type: T }>) => boolean = () => true, timeoutMs = 15_000): Promise<Extract<AnyEvent, { type: T }>> {
    return eventually(() => this.ofType(type).find(predicate), timeoutMs, `event ${type}`);
  }

  /** Unbinds the tap (for tests that need an event to be unroutable); `resume` binds it again. */
  async pause(): Promise<void> {
    await this.channel?.unbindQueue(this.queue!, new TopologyNames(this.prefix).exchange, '#');
  }

  async resume(): Promise<void> {
    await this.channel?.bindQueue(this.queue!, new TopologyNames(this.prefix).exchange, '#');
  }

  async stop(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
  }
}

/** Publishes an event the way another backend of the integration would (e.g. auth.failed). */
export async function publishExternal(prefix: string, event: AnyEvent): Promise<void> {
  const connection = await connectTestBroker();
  const channel = await connection.createConfirmChannel();
  channel.publish(new TopologyNames(prefix).exchange, event.type, Buffer.from(JSON.stringify(event)), {
    persistent: true,
    contentType: 'application/json',
    messageId: event.id,
    type: event.type,
  });
  await channel.waitForConfirms();
  await connection.close();
}
