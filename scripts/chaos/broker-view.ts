import { execFile } from 'node:child_process';
import { connect, ChannelModel, ConsumeMessage } from 'amqplib';
import { CanaryScanner } from './canary-scanner';

/**
 * What the chaos suite sees of its private RabbitMQ node: every message through the firehose
 * (published and delivered, to every exchange including the default one, so retry and parked
 * copies and their headers too), queue depths, and which OS process holds unacknowledged
 * deliveries (the proof that a worker has work in flight before it is killed).
 */
function run(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

export class BrokerView {
  constructor(
    readonly nodeName: string,
    readonly url: string,
  ) {}

  ctl(...args: string[]): Promise<string> {
    return run('rabbitmqctl', ['-n', this.nodeName, ...args]);
  }

  async traceOn(): Promise<void> {
    await this.ctl('trace_on');
  }

  async queues(): Promise<{ name: string; messages: number; unacked: number }[]> {
    const out = await this.ctl('list_queues', 'name', 'messages', 'messages_unacknowledged', '--formatter', 'json');
    return (JSON.parse(out) as { name: string; messages: number; messages_unacknowledged: number }[]).map((q) => ({
      name: q.name,
      messages: q.messages,
      unacked: q.messages_unacknowledged,
    }));
  }

  /** Unacknowledged deliveries per OS process id (joined through the connection's peer port). */
  async unackedByPid(): Promise<Map<number, number>> {
    const connections = JSON.parse(await this.ctl('list_connections', 'pid', 'peer_port', '--formatter', 'json')) as { pid: string; peer_port: number }[];
    const channels = JSON.parse(await this.ctl('list_channels', 'connection', 'messages_unacknowledged', '--formatter', 'json')) as {
      connection: string;
      messages_unacknowledged: number;
    }[];
    const sockets = await run('ss', ['-tnpH', 'state', 'established']);
    const pidByPort = new Map<number, number>();
    for (const line of sockets.split('\n')) {
      const m = /127\.0\.0\.1:(\d+)\s+\S+\s+users:\(\("node",pid=(\d+)/.exec(line);
      if (m) pidByPort.set(Number(m[1]), Number(m[2]));
    }
    const portByConnection = new Map(connections.map((c) => [c.pid, c.peer_port]));
    const result = new Map<number, number>();
    for (const channel of channels) {
      const pid = pidByPort.get(portByConnection.get(channel.connection) ?? -1);
      if (pid !== undefined && channel.messages_unacknowledged > 0) result.set(pid, (result.get(pid) ?? 0) + channel.messages_unacknowledged);
    }
    return result;
  }
}

export interface TraceCounts {
  published: number;
  delivered: number;
  retryCopies: number;
  parkedCopies: number;
}

/** A durable queue on the firehose exchange, read continuously and searched for keys. */
export class TraceTap {
  private model?: ChannelModel;
  private stopped = false;
  readonly counts: TraceCounts = { published: 0, delivered: 0, retryCopies: 0, parkedCopies: 0 };
  private reconnecting?: Promise<void>;

  constructor(
    private readonly broker: BrokerView,
    private readonly scanner: CanaryScanner,
  ) {}

  async start(): Promise<void> {
    await this.broker.traceOn();
    await this.open();
  }

  private async open(): Promise<void> {
    const model = await connect(this.broker.url);
    model.on('error', () => undefined);
    model.on('close', () => {
      if (!this.stopped) this.reconnecting = this.reconnect();
    });
    const channel = await model.createChannel();
    await channel.assertQueue('chaos.firehose', { durable: true });
    await channel.bindQueue('chaos.firehose', 'amq.rabbitmq.trace', '#');
    await channel.prefetch(500);
    await channel.consume('chaos.firehose', (msg) => {
      if (!msg) return;
      this.take(msg);
      channel.ack(msg);
    });
    this.model = model;
  }

  private async reconnect(): Promise<void> {
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        // Tracing is node state that a restart clears.
        await this.broker.traceOn();
        await this.open();
        return;
      } catch {
        /* broker still down */
      }
    }
  }

  /** After a broker restart: trace again at once (the reconnect loop may still be waiting). */
  async afterBrokerStart(): Promise<void> {
    await this.broker.traceOn();
    await this.reconnecting;
  }

  private take(msg: ConsumeMessage): void {
    const key = msg.fields.routingKey;
    const headers = msg.properties.headers ?? {};
    if (key.startsWith('publish.')) {
      this.counts.published += 1;
      const target = String((headers.routing_keys as string[] | undefined)?.[0] ?? '');
      if (target.includes('.retry.')) this.counts.retryCopies += 1;
      if (target.endsWith('.parked')) this.counts.parkedCopies += 1;
    } else if (key.startsWith('deliver.')) {
      if (key === 'deliver.chaos.firehose') return;
      this.counts.delivered += 1;
    }
    this.scanner.scan('messages (firehose: bodies and headers, incl. retry and parked copies)', `${msg.content.toString('utf8')}\n${JSON.stringify(headers)}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.model?.close().catch(() => undefined);
  }
}
