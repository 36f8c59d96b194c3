import { EventEmitter } from 'node:events';
import { connect, ChannelModel, ConfirmChannel } from 'amqplib';
import { KeywardLogger } from '@keyward/observability';
import { batchTurnWrites } from './turn-writes';
import { declareTopology, NotificationsRetention, QueueType, QuorumUnavailableError, TopologyNames, TopologyReport } from './topology';

class BrokerUnreachableError extends Error {
  constructor(where: string, cause: unknown) {
    super(`RabbitMQ is not reachable at ${where} (${(cause as Error)?.message ?? cause}). ` + 'Start it (docker compose up -d rabbitmq, or rabbitmq-server -detached) or set AMQP_URL.');
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
  /** Called when the broker gives classic queues where quorum queues were asked for (warned, counted, shown in readiness). */
  onClassicFallback?: (report: TopologyReport) => void;
  /** Tests shrink it to see the bound work. */
  notificationsRetention?: NotificationsRetention;
}

/** What readiness shows about the queues: quorum as intended, or classic and why. */
export interface TopologyStatus {
  queueType: QueueType;
  /** Set by a restricted broker user that may not declare: the setup step declared the topology. */
  declaredBySetup: boolean;
  classicQueues: string[];
  keptQueues: string[];
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
  topology: TopologyStatus = { queueType: 'quorum', declaredBySetup: false, classicQueues: [], keptQueues: [] };

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
    // noDelay (TCP_NODELAY, off in amqplib by default): with Nagle on, a publish written right
    // after a consumer's ack on the same connection waited for the broker's delayed ACK, ~40 ms.
    const model = await connect(this.options.url, { clientProperties: { connection_name: this.options.name }, timeout: 5_000, noDelay: true });
    if (!batchTurnWrites(model)) this.options.logger.warn('amqplib keeps its socket elsewhere: frames go out one write each (ADR 0058)');
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
    let report: TopologyReport;
    try {
      report = await declareTopology(model, this.names, this.queueType, this.options.notificationsRetention);
    } catch (error) {
      if (error instanceof QuorumUnavailableError) {
        // A broker without quorum queues: classic durable queues, which keyward must not hide.
        this.queueType = 'classic';
        report = await declareTopology(model, this.names, this.queueType, this.options.notificationsRetention);
      } else if (/ACCESS_REFUSED/.test(String((error as Error)?.message ?? error))) {
        // A service's own broker user may not declare exchanges: `npm run broker:setup` did.
        await this.verifyDeclaredBySetup(model);
        this.topology = { ...this.topology, declaredBySetup: true };
        return;
      } else {
        throw error;
      }
    }
    const classicQueues = report.queueType === 'classic' ? ['all'] : report.classicKept;
    this.topology = { queueType: classicQueues.length > 0 ? 'classic' : 'quorum', declaredBySetup: false, classicQueues, keptQueues: report.kept };
    if (report.kept.length > 0) {
      this.options.logger.warn('Queues exist with other arguments than this version declares; kept as they are (policies from npm run broker:setup set their limits)', {
        queues: report.kept,
      });
    }
    if (classicQueues.length > 0) {
      this.options.logger.warn('Quorum queues are not in use: events sit in classic queues, which are not replicated. Check the broker (feature flags, version) and see the runbook.', {
        classicQueues,
      });
      this.options.onClassicFallback?.(report);
    }
  }

  private async verifyDeclaredBySetup(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    try {
      await channel.checkExchange(this.names.exchange);
    } catch (error) {
      throw new Error(`The broker user may not declare the topology and it is not there; run npm run broker:setup (${(error as Error).message})`, { cause: error });
    } finally {
      await channel.close().catch(() => undefined);
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
