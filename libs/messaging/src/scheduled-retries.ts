import type { ConfirmChannel, ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import { DataSource } from 'typeorm';
import { AnyEvent, Subscriber } from '@keyward/contracts';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { AmqpConnection } from './amqp-connection';
import { REDELIVERY_ROUTES } from './topology';

/** Only keyward's own headers travel with a retry: anything else a publisher set is dropped. */
const KEYWARD_HEADER = /^x-keyward-/;

export function keywardHeaders(headers: MessagePropertyHeaders | undefined): Record<string, string | number> {
  const kept: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (KEYWARD_HEADER.test(name) && (typeof value === 'string' || typeof value === 'number')) kept[name] = value;
  }
  return kept;
}

export interface RetryToSchedule {
  subscriber: Subscriber;
  event: AnyEvent;
  headers: Record<string, string | number>;
  attempt: number;
  lastError: string;
  delayMs: number;
}

interface DueRetry {
  id: string;
  event_id: string;
  event_type: string;
  body: string;
  headers: Record<string, string | number>;
  correlation_id: string | null;
}

/**
 * Delayed retries kept in Postgres (ADR 0013). `schedule` commits the retry before the failed
 * delivery is acked; the subscriber's `RetryRelay` republishes it when due.
 */
export const ScheduledRetries = {
  async schedule(dataSource: DataSource, retry: RetryToSchedule): Promise<void> {
    await dataSource.query(
      `INSERT INTO scheduled_retries (subscriber, event_id, event_type, tenant_id, payload, headers, attempt, last_error, due_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, now() + make_interval(secs => $9::double precision / 1000))
       ON CONFLICT (subscriber, event_id, attempt) DO NOTHING`,
      [retry.subscriber, retry.event.id, retry.event.type, retry.event.tenantId, JSON.stringify(retry.event), JSON.stringify(retry.headers), retry.attempt, retry.lastError, retry.delayMs],
    );
  },

  /** Retries waiting for `subscriber` (for operators and the reconciler). */
  async waiting(dataSource: DataSource, subscriber: Subscriber): Promise<number> {
    const [row] = await dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM scheduled_retries WHERE subscriber = $1`, [subscriber]);
    return row.n;
  },
};

export interface RetryRelayOptions {
  pollIntervalMs?: number;
  batchSize?: number;
}

/**
 * Republishes a subscriber's due retries to its own queue through its redelivery exchange, with
 * publisher confirms and `mandatory`; a row is deleted only once the broker confirmed it routed.
 * Rows are claimed FOR UPDATE SKIP LOCKED, so every replica of the subscriber can run one.
 */
export class RetryRelay {
  private channel?: ConfirmChannel;
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private readonly returned = new Set<string>();
  private readonly republished;
  private readonly failures;

  constructor(
    private readonly dataSource: DataSource,
    private readonly amqp: AmqpConnection,
    private readonly subscriber: Subscriber,
    private readonly logger: KeywardLogger,
    metrics: Metrics,
    private readonly options: RetryRelayOptions = {},
  ) {
    this.republished = metrics.counter('keyward_retries_republished_total', 'Scheduled retries republished to their subscriber and confirmed', ['subscriber']);
    this.failures = metrics.counter('keyward_retry_relay_failures_total', 'Retry relay rounds or rows that failed and will be retried', ['reason']);
    const waiting = metrics.gauge('keyward_retries_waiting', 'Retries scheduled in Postgres and not yet republished', ['subscriber'], async () => {
      const n = await ScheduledRetries.waiting(this.dataSource, this.subscriber).catch(() => undefined);
      if (n !== undefined) waiting.set({ subscriber: this.subscriber }, n);
    });
    this.amqp.on('lost', () => (this.channel = undefined));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.channel?.close().catch(() => undefined);
    this.channel = undefined;
  }

  /** Republishes one batch of due retries; returns how many were confirmed. */
  async relayDue(): Promise<number> {
    const channel = await this.ensureChannel();
    const exchange = this.amqp.names.redeliveryExchange(this.subscriber);
    return this.dataSource.transaction(async (tx) => {
      const rows = await tx.query<DueRetry[]>(
        `SELECT id::text, event_id::text, event_type, payload::text AS body, headers, payload->>'correlationId' AS correlation_id
         FROM scheduled_retries WHERE subscriber = $1 AND due_at <= now()
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [this.subscriber, this.options.batchSize ?? 200],
      );
      if (rows.length === 0) return 0;
      this.returned.clear();
      for (const row of rows) {
        channel.publish(exchange, REDELIVERY_ROUTES.retry, Buffer.from(row.body), {
          persistent: true,
          mandatory: true,
          messageId: row.event_id,
          type: row.event_type,
          contentType: 'application/json',
          correlationId: row.correlation_id ?? undefined,
          headers: { ...row.headers, [RETRY_ROW_HEADER]: row.id },
        });
      }
      // Returns for unroutable messages arrive before their confirms.
      await channel.waitForConfirms();
      const unroutable = rows.filter((r) => this.returned.has(r.id));
      const confirmed = rows.filter((r) => !this.returned.has(r.id));
      if (confirmed.length > 0) await tx.query(`DELETE FROM scheduled_retries WHERE id = ANY($1::bigint[])`, [confirmed.map((r) => r.id)]);
      for (const row of unroutable) {
        this.failures.inc({ reason: 'unroutable' });
        this.logger.error('Retry was unroutable (queue or binding missing); kept and tried again later', { eventId: row.event_id, type: row.event_type, exchange });
        await tx.query(
          `UPDATE scheduled_retries SET relay_attempts = relay_attempts + 1, relay_error = 'unroutable',
             due_at = now() + make_interval(secs => LEAST(300, power(2, relay_attempts)))
           WHERE id = $1`,
          [row.id],
        );
      }
      this.returned.clear();
      if (confirmed.length > 0) this.republished.inc({ subscriber: this.subscriber }, confirmed.length);
      return confirmed.length;
    });
  }

  private async ensureChannel(): Promise<ConfirmChannel> {
    if (this.channel) return this.channel;
    const channel = await this.amqp.createConfirmChannel();
    channel.on('return', (msg: ConsumeMessage) => {
      const id: unknown = msg.properties.headers?.[RETRY_ROW_HEADER];
      if (typeof id === 'string') this.returned.add(id);
    });
    channel.on('error', (error: Error) => this.logger.warn('Retry relay channel error', { err: error }));
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
        const sent = await this.relayDue();
        backoff = 100;
        if (sent >= (this.options.batchSize ?? 200)) continue;
        await this.sleep(this.options.pollIntervalMs ?? 250);
      } catch (error) {
        this.channel = undefined;
        this.failures.inc({ reason: 'round' });
        this.logger.warn('Retry relay round failed; retries stay scheduled and are tried again', { err: error, backoffMs: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

/** Which scheduled row a republished copy came from (to match broker returns to rows). */
const RETRY_ROW_HEADER = 'x-keyward-retry-row';
