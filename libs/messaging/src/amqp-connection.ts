import { EventEmitter } from 'node:events';
import { connect, ChannelModel, ConfirmChannel } from 'amqplib';
import { KeywardLogger } from '@keyward/observability';
import { declareTopology, QueueType, TopologyNames } from './topology';

export class BrokerUnreachableError extends Error {
  constructor(where: string, cause: unknown) {
    super(
      `RabbitMQ is not reachable at ${where} (${(cause as Error)?.message ?? cause}). ` +
        'Start it (docker compose up -d rabbitmq, or rabbitmq-server -detached) or set AMQP_URL.',
    );
    this.name = 'BrokerUnreachableError';
  }
}

export function describeAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5672}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable AMQP_URL)';
  }
}

export interface AmqpConnectionOptions {
  url: string;
  prefix: string;
  logger: KeywardLogger;
  /** Label shown in RabbitMQ's connection list. */
  name: string;
  maxReconnectDelayMs?: number;
}

/**
 * One broker connection that re-establishes itself after the broker or network drops it, and
 * redeclares the topology each time. Users listen for `ready` to (re)create their channels.
 */
export class AmqpConnection extends EventEmitter {
  readonly names: TopologyNames;
  private model?: ChannelModel;
  private closing = false;
  private reconnectTimer?: NodeJS.Timeout;
  private attempt = 0;
  queueType: QueueType = 'quorum';

  constructor(private readonly options: AmqpConnectionOptions) {
    super();
    this.names = new TopologyNames(options.prefix);
  }

  get connected(): boolean {
    return this.model !== undefined;
  }

  get current(): ChannelModel | undefined {
    return this.model;
  }

  /** First connection: fails fast with a clear message instead of hanging. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (error) {
      throw new BrokerUnreachableError(describeAmqpUrl(this.options.url), error);
    }
  }

  async createConfirmChannel(): Promise<ConfirmChannel> {
    if (!this.model) throw new Error('RabbitMQ connection is not open');
    return this.model.createConfirmChannel();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    const model = this.model;
    this.model = undefined;
    if (model) await model.close().catch(() => undefined);
  }

  private async open(): Promise<void> {
    const model = await connect(this.options.url, { clientProperties: { connection_name: this.options.name }, timeout: 5_000 });
    model.on('error', (error: Error) => this.options.logger.warn('RabbitMQ connection error', { err: error }));
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = undefined;
      this.emit('lost');
      if (!this.closing) {
        this.options.logger.warn('RabbitMQ connection lost; reconnecting');
        this.scheduleReconnect();
      }
    });
    await this.declare(model);
    this.model = model;
    this.attempt = 0;
    this.emit('ready', model);
  }

  private async declare(model: ChannelModel): Promise<void> {
    try {
      const channel = await model.createChannel();
      await declareTopology(channel, this.names, this.queueType);
      await channel.close();
    } catch (error) {
      // A broker without quorum queues (or one with classic queues already declared under these
      // names) refuses the arguments; fall back to classic durable queues.
      if (this.queueType === 'quorum' && /PRECONDITION_FAILED|NOT_IMPLEMENTED|COMMAND_INVALID|inequivalent arg/i.test(String(error))) {
        this.options.logger.warn('Quorum queues are not available with these names; using classic durable queues', { err: error });
        this.queueType = 'classic';
        const channel = await model.createChannel();
        await declareTopology(channel, this.names, this.queueType);
        await channel.close();
        return;
      }
      throw error;
    }
  }

  private scheduleReconnect(): void {
    const max = this.options.maxReconnectDelayMs ?? 15_000;
    const delay = Math.min(max, 200 * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.open().catch((error) => {
        this.options.logger.warn('RabbitMQ reconnect failed', { attempt: this.attempt, err: error });
        if (!this.closing) this.scheduleReconnect();
      });
    }, delay);
  }
}
