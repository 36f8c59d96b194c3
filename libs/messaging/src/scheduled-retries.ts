import type { MessagePropertyHeaders } from 'amqplib';
import { DataSource } from 'typeorm';
import { AnyEvent, Subscriber } from '@keyward/contracts';
import { KeywardLogger, Metrics, PeriodicTask, RoundResult, untilDue } from '@keyward/observability';
import { preparedQuery } from '@keyward/persistence';
import { AmqpConnection } from './amqp-connection';
import { ConfirmedPublisher } from './confirmed-publisher';
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
  /** The longest sleep between looks (default 5 s): how late a retry another replica scheduled after the last look can be. */
  pollIntervalMs?: number;
  batchSize?: number;
}

/** Due rows found but none relayed (another replica holds them): the next look comes this much later. */
const HELD_ELSEWHERE_MS = 250;

/** How long until the subscriber's next retry is due (ms, ≤ 0: due now); null when none waits. */
const NEXT_DUE = `SELECT ceil(extract(epoch FROM min(due_at) - clock_timestamp()) * 1000)::float8 AS "inMs"
  FROM scheduled_retries WHERE subscriber = $1`;

/**
 * Republishes a subscriber's due retries to its own queue through its redelivery exchange, with
 * publisher confirms and `mandatory`; a row is deleted only once the broker confirmed it routed.
 * Rows are claimed FOR UPDATE SKIP LOCKED, so every replica of the subscriber can run one.
 * It sleeps until the next retry is due, by one look at the index (ADR 0055): a retry its own
 * replica schedules wakes it (`wake`), one another replica schedules is seen at its next look.
 */
export class RetryRelay {
  private readonly publisher: ConfirmedPublisher;
  private readonly task: PeriodicTask;
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
    this.publisher = new ConfirmedPublisher(
      amqp,
      (msg) => {
        const id: unknown = msg.properties.headers?.[RETRY_ROW_HEADER];
        return typeof id === 'string' ? id : undefined;
      },
      logger,
    );
    this.task = new PeriodicTask({
      round: () => this.round(),
      intervalMs: this.options.pollIntervalMs ?? 5_000,
      ready: () => this.amqp.connected,
      onFailure: (error, backoffMs) => {
        this.failures.inc({ reason: 'round' });
        this.logger.warn('Retry relay round failed; retries stay scheduled and are tried again', { err: error, backoffMs });
      },
    });
  }

  start(): void {
    this.task.start();
  }

  async stop(): Promise<void> {
    await this.task.stop();
    await this.publisher.close();
  }

  /** A retry was just scheduled: look again now, so the relay sleeps until that one if it is the next. */
  wake(): void {
    this.task.wake();
  }

  /** One look (no transaction); a claim only when something is due. */
  private async round(): Promise<RoundResult> {
    const [next] = await preparedQuery<{ inMs: number | null }>(this.dataSource.manager, 'retry_next_due', NEXT_DUE, [this.subscriber]);
    const waiting = untilDue(next.inMs);
    if (waiting) return waiting;
    const relayed = await this.relayDue();
    if (relayed >= (this.options.batchSize ?? 200)) return 'more';
    return { nextInMs: relayed > 0 ? 0 : HELD_ELSEWHERE_MS };
  }

  /** Republishes one batch of due retries; returns how many were confirmed. */
  async relayDue(): Promise<number> {
    const exchange = this.amqp.names.redeliveryExchange(this.subscriber);
    return this.dataSource.transaction(async (tx) => {
      const rows = await tx.query<DueRetry[]>(
        `SELECT id::text, event_id::text, event_type, payload::text AS body, headers, payload->>'correlationId' AS correlation_id
         FROM scheduled_retries WHERE subscriber = $1 AND due_at <= now()
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [this.subscriber, this.options.batchSize ?? 200],
      );
      if (rows.length === 0) return 0;
      const { confirmed, unroutable } = await this.publisher.publishBatch(
        rows.map((row) => ({
          key: row.id,
          exchange,
          routingKey: REDELIVERY_ROUTES.retry,
          body: Buffer.from(row.body),
          options: {
            persistent: true,
            messageId: row.event_id,
            type: row.event_type,
            contentType: 'application/json',
            correlationId: row.correlation_id ?? undefined,
            headers: { ...row.headers, [RETRY_ROW_HEADER]: row.id },
          },
        })),
      );
      if (confirmed.length > 0) await tx.query(`DELETE FROM scheduled_retries WHERE id = ANY($1::bigint[])`, [confirmed]);
      for (const id of unroutable) {
        const row = rows.find((r) => r.id === id)!;
        this.failures.inc({ reason: 'unroutable' });
        this.logger.error('Retry was unroutable (queue or binding missing); kept and tried again later', { eventId: row.event_id, type: row.event_type, exchange });
        await tx.query(
          `UPDATE scheduled_retries SET relay_attempts = relay_attempts + 1, relay_error = 'unroutable',
             due_at = now() + make_interval(secs => LEAST(300, power(2, relay_attempts)))
           WHERE id = $1`,
          [row.id],
        );
      }
      if (confirmed.length > 0) this.republished.inc({ subscriber: this.subscriber }, confirmed.length);
      return confirmed.length;
    });
  }
}

/** Which scheduled row a republished copy came from (to match broker returns to rows). */
const RETRY_ROW_HEADER = 'x-keyward-retry-row';
