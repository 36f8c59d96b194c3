import { Client } from 'pg';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { DataSource } from 'typeorm';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { preparedQuery } from '@keyward/persistence';
import { AmqpConnection } from './amqp-connection';

interface OutboxRow {
  id: string;
  event_type: string;
  /** The envelope as stored, sent as is (no parse and re-serialise on the hot path). */
  body: string;
  correlation_id: string | null;
  attempts: number;
}

export interface OutboxRelayOptions {
  batchSize?: number;
  pollIntervalMs?: number;
  /** Published rows older than this are deleted. */
  retainPublishedMs?: number;
}

/**
 * Moves committed outbox rows to RabbitMQ with publisher confirms. A row is marked published
 * only after the broker confirmed it; an unroutable return or a nack leaves it for a later try.
 * Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of relays can run side by side.
 * Wakes on NOTIFY keyward_outbox, with polling as the fallback.
 */
export class OutboxRelay {
  private channel?: ConfirmChannel;
  private listener?: Client;
  private running = false;
  private generation = 0;
  private wake?: () => void;
  /** A NOTIFY that arrived while a batch was being relayed: the next sleep is skipped. */
  private notified = false;
  private loop?: Promise<void>;
  private readonly returned = new Set<string>();
  private lastCleanup = 0;
  private readonly published;
  private readonly failures;
  private readonly lag;

  constructor(
    private readonly dataSource: DataSource,
    private readonly amqp: AmqpConnection,
    private readonly databaseUrl: string,
    private readonly logger: KeywardLogger,
    metrics: Metrics,
    private readonly options: OutboxRelayOptions = {},
  ) {
    this.published = metrics.counter('keyward_outbox_published_total', 'Events relayed from the outbox and confirmed by RabbitMQ', ['type']);
    this.failures = metrics.counter('keyward_outbox_relay_failures_total', 'Relay batches or rows that failed and will be retried', ['reason']);
    this.amqp.on('lost', () => (this.channel = undefined));
    this.lag = metrics.gauge('keyward_outbox_lag_seconds', 'Age of the oldest unpublished outbox row', [], async () => {
      const [row] = (await this.dataSource
        .query("SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS lag FROM outbox WHERE published_at IS NULL")
        .catch(() => [{ lag: 0 }])) as { lag: string | number }[];
      this.lag.set(Number(row?.lag ?? 0));
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation += 1;
    void this.listen(this.generation);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.listener?.end().catch(() => undefined);
    await this.channel?.close().catch(() => undefined);
  }

  /** Publishes one batch; returns how many rows were confirmed. */
  async relayOnce(): Promise<number> {
    const channel = await this.ensureChannel();
    const batchSize = this.options.batchSize ?? 500;
    return this.dataSource.transaction(async (tx) => {
      const rows = await preparedQuery<OutboxRow>(
        tx,
        'outbox_claim',
        `SELECT id, event_type, payload::text AS body, payload->>'correlationId' AS correlation_id, attempts FROM outbox
         WHERE published_at IS NULL AND available_at <= now()
         ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      if (rows.length === 0) return 0;
      for (const row of rows) {
        channel.publish(this.amqp.names.exchange, row.event_type, Buffer.from(row.body), {
          persistent: true,
          mandatory: true,
          messageId: row.id,
          type: row.event_type,
          contentType: 'application/json',
          timestamp: Math.floor(Date.now() / 1000),
          correlationId: row.correlation_id ?? undefined,
        });
      }
      // Returns for unroutable messages arrive before their confirms.
      await channel.waitForConfirms();
      const unroutable = rows.filter((r) => this.returned.delete(r.id));
      const confirmed = rows.filter((r) => !unroutable.includes(r));
      if (confirmed.length > 0) {
        await preparedQuery(tx, 'outbox_mark_published', 'UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[])', [
          confirmed.map((r) => r.id),
        ]);
      }
      for (const row of unroutable) {
        this.failures.inc({ reason: 'unroutable' });
        this.logger.error('Outbox event was unroutable; will retry', { eventId: row.id, type: row.event_type, attempts: row.attempts + 1 });
        await tx.query(
          `UPDATE outbox SET attempts = attempts + 1, last_error = 'unroutable',
             available_at = now() + make_interval(secs => LEAST(300, power(2, attempts)))
           WHERE id = $1`,
          [row.id],
        );
      }
      for (const row of confirmed) this.published.inc({ type: row.event_type });
      return confirmed.length;
    });
  }

  private async ensureChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const channel = await this.amqp.createConfirmChannel();
    channel.on('return', (msg: ConsumeMessage) => {
      if (msg.properties.messageId) this.returned.add(String(msg.properties.messageId));
    });
    channel.on('error', (error: Error) => this.logger.warn('Relay channel error', { err: error }));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    return channel;
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.running) {
      try {
        if (!this.amqp.connected) {
          await this.sleep(250);
          continue;
        }
        const sent = await this.relayOnce();
        backoff = 100;
        await this.cleanup();
        if (sent >= (this.options.batchSize ?? 500)) continue;
        await this.sleep(this.options.pollIntervalMs ?? 1_000);
      } catch (error) {
        this.channel = undefined;
        this.failures.inc({ reason: 'batch' });
        this.logger.warn('Outbox relay batch failed; rows stay unpublished and will be retried', { err: error, backoffMs: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.notified) {
      this.notified = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.notified = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private async listen(generation: number): Promise<void> {
    while (this.running && generation === this.generation) {
      const client = new Client({ connectionString: this.databaseUrl });
      try {
        await client.connect();
        await client.query('LISTEN keyward_outbox');
        this.listener = client;
        client.on('notification', () => {
          this.notified = true;
          this.wake?.();
        });
        await new Promise<void>((resolve) => {
          client.on('error', () => resolve());
          client.on('end', () => resolve());
        });
      } catch (error) {
        this.logger.debug('Outbox LISTEN connection failed; polling meanwhile', { err: error });
      }
      await client.end().catch(() => undefined);
      if (this.running && generation === this.generation) await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  private async cleanup(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCleanup < 60_000) return;
    this.lastCleanup = now;
    const retainSeconds = Math.round((this.options.retainPublishedMs ?? 24 * 3_600_000) / 1000);
    await this.dataSource.query(
      `DELETE FROM outbox WHERE id IN (
         SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT 5000)`,
      [retainSeconds],
    );
  }
}
