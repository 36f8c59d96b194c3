import type { ConsumeMessage } from 'amqplib';
import { Client } from 'pg';
import { poolApplicationName } from '@keyward/config';
import { DataSource, EntityManager } from 'typeorm';
import type { EventEnvelope } from '@keyward/contracts';
import { KeywardLogger, Metrics, PeriodicTask, RoundResult, untilDue } from '@keyward/observability';
import { inTransactionStartedWith, oneOrMany, PipelinedStatement, pipelinedOnce, preparedQuery, TransactionOutcome } from '@keyward/persistence';
import { AmqpConnection } from './amqp-connection';
import { ConfirmedPublisher } from './confirmed-publisher';
import { CommittedEvents } from './outbox';

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
  /**
   * The `application_name` of the service's own pool (`keyward-<service>`): commits of another
   * keyward service, named in the notification, are left to that service's relay, and to this
   * one's poll if they stay (ADR 0048). Unset: every commit wakes it.
   */
  application?: string;
}

/**
 * How long the confirmed events of a writer wait to be marked published, together: far inside the
 * writer's grace (`WRITER_GRACE_SECONDS`), after which a relay would publish them again.
 */
const MARK_DELAY_MS = 100;

/** The pools of the services that run a relay, as the outbox trigger names a commit's writer (migration 1764410000000). */
const RELAYING_POOLS = new Set((['intake', 'validator', 'rotation', 'monitor', 'gateway'] as const).map(poolApplicationName));

/**
 * Moves committed outbox rows to RabbitMQ with publisher confirms. A row is marked published
 * only after the broker confirmed it; an unroutable return or a nack leaves it for a later try.
 * Rows are claimed with FOR UPDATE SKIP LOCKED, so any number of relays can run side by side.
 * Wakes on NOTIFY keyward_outbox for its own service's commits (others' relays take theirs; ADR
 * 0048), with polling as the fallback that also picks up whatever another relay left.
 */
export class OutboxRelay {
  private readonly publisher: ConfirmedPublisher;
  /** Its own channel for the events its process's commits hand over (`CommittedEvents`): never shared with a claimed batch. */
  private readonly committedPublisher: ConfirmedPublisher;
  private readonly committed: EventEnvelope[] = [];
  private sendingCommitted?: Promise<void>;
  private drainingCommitted = false;
  /** Confirmed events of `committed` not marked published yet: marked together shortly (`markConfirmed`). */
  private readonly unmarked: { id: string; type: string }[] = [];
  private markTimer?: NodeJS.Timeout;
  private marking: Promise<void> = Promise.resolve();
  private unregister?: () => void;
  private readonly task: PeriodicTask;
  private listener?: Client;
  private running = false;
  private generation = 0;
  private lastCleanup = 0;
  /** A notification of a commit arrived since the last round: the next one claims without looking first. */
  private notified = false;
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
    const keyOf = (msg: ConsumeMessage) => (msg.properties.messageId ? String(msg.properties.messageId) : undefined);
    this.publisher = new ConfirmedPublisher(amqp, keyOf, logger);
    this.committedPublisher = new ConfirmedPublisher(amqp, keyOf, logger);
    this.task = new PeriodicTask({
      round: async () => {
        const result = await this.round();
        await this.cleanup();
        return result;
      },
      intervalMs: this.options.pollIntervalMs ?? 1_000,
      ready: () => this.amqp.connected,
      onFailure: (error, backoffMs) => {
        this.failures.inc({ reason: 'batch' });
        this.logger.warn('Outbox relay batch failed; rows stay unpublished and will be retried', { err: error, backoffMs });
      },
    });
    this.lag = metrics.gauge('keyward_outbox_lag_seconds', 'Age of the oldest unpublished outbox row', [], async () => {
      const [row] = (await this.dataSource.query('SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS lag FROM outbox WHERE published_at IS NULL').catch(() => [{ lag: 0 }])) as {
        lag: string | number;
      }[];
      this.lag.set(Number(row?.lag ?? 0));
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation += 1;
    void this.listen(this.generation);
    this.task.start();
    this.unregister = CommittedEvents.register(this.dataSource, (events) => this.sendCommitted(events));
  }

  async stop(): Promise<void> {
    this.running = false;
    // Nothing more is handed over; what was is published (and marked) before the publishers close.
    this.unregister?.();
    await this.sendingCommitted;
    await this.markConfirmed();
    await this.task.stop();
    await this.listener?.end().catch(() => undefined);
    await this.publisher.close();
    await this.committedPublisher.close();
  }

  /**
   * Events its process's transactions staged for their writer (`Outbox.staging(events, true)`),
   * handed over right after the commit (ADR 0051): published on a channel of their own, what
   * arrives meanwhile together in the next batch; the confirmed ones are marked published together
   * within `MARK_DELAY_MS` (ADR 0056); `stop` waits for what was handed over, and marks it, before
   * it closes. A row not confirmed or not marked (broker down, unroutable, the process crashing)
   * stays unpublished: this relay or another takes it once its grace is over, and an inbox drops
   * the copy should both have sent it.
   */
  private sendCommitted(events: EventEnvelope[]): void {
    this.committed.push(...events);
    if (this.drainingCommitted) return;
    this.drainingCommitted = true;
    this.sendingCommitted = this.drainCommitted();
  }

  private async drainCommitted(): Promise<void> {
    try {
      await this.sendCommittedBatches();
    } finally {
      // In the same turn as the loop's last look at the queue (even when it never waited): what is handed over next starts a new drain.
      this.drainingCommitted = false;
    }
  }

  private async sendCommittedBatches(): Promise<void> {
    // Also while stopping: what was handed over before `stop` goes out before its publisher closes
    // (with every replica stopping at once, no relay would take those rows after their grace).
    const batchSize = this.options.batchSize ?? 500;
    while (this.committed.length > 0) {
      const batch = this.committed.splice(0, batchSize);
      if (!this.amqp.connected) continue; // left to the relay after the grace
      try {
        const { confirmed } = await this.committedPublisher.publishBatch(batch.map((event) => this.message(event.id, event.type, JSON.stringify(event), event.correlationId)));
        const types = new Map(batch.map((e) => [e.id, e.type]));
        this.unmarked.push(...confirmed.map((id) => ({ id, type: types.get(id)! })));
        if (this.unmarked.length >= batchSize) void this.markConfirmed();
        else if (this.unmarked.length > 0) this.markTimer ??= setTimeout(() => void this.markConfirmed(), MARK_DELAY_MS);
      } catch (error) {
        this.failures.inc({ reason: 'committed' });
        this.logger.debug('Committed events not published by their writer; the relay takes them after the grace', { err: error, events: batch.length });
      }
    }
  }

  /**
   * Marks the confirmed events waiting in `unmarked`, in one statement, one such statement at a
   * time. Not at each confirm: the confirm comes as the consumer receives the event, and a mark
   * then takes the cores the consumer's work needs; within `MARK_DELAY_MS` the marks of several
   * events are one statement. Unmarked (the database down, the process gone), a row is the relay's
   * after its grace.
   */
  private markConfirmed(): Promise<void> {
    clearTimeout(this.markTimer);
    this.markTimer = undefined;
    this.marking = this.marking.then(async () => {
      const batch = this.unmarked.splice(0);
      if (batch.length === 0) return;
      try {
        await pipelinedOnce(this.dataSource, [markPublished(batch.map((b) => b.id))]);
        for (const { type } of batch) this.published.inc({ type });
      } catch (error) {
        this.failures.inc({ reason: 'committed' });
        this.logger.debug('Confirmed events not marked published; the relay takes them after the grace', { err: error, events: batch.length });
      }
    });
    return this.marking;
  }

  /** An event as the relay publishes it, from a claimed row or from its writer: persistent, named by its event id, typed. */
  private message(id: string, type: string, body: string, correlationId: string | undefined) {
    return {
      key: id,
      exchange: this.amqp.names.exchange,
      routingKey: type,
      body: Buffer.from(body),
      options: { persistent: true, messageId: id, type, contentType: 'application/json', timestamp: Math.floor(Date.now() / 1000), correlationId },
    };
  }

  /**
   * A round woken by a commit's notification claims at once; a poll first looks (one statement, no
   * transaction) and claims only when a row is available, or sleeps until the first one will be
   * (a row its writer publishes becomes the relay's after the grace; ADR 0055).
   */
  private async round(): Promise<RoundResult> {
    const notified = this.notified;
    this.notified = false;
    if (!notified) {
      const [next] = await preparedQuery<{ inMs: number | null }>(this.dataSource.manager, 'outbox_next_available', NEXT_AVAILABLE, []);
      const waiting = untilDue(next.inMs);
      if (waiting) return waiting;
    }
    return (await this.relayOnce()) >= (this.options.batchSize ?? 500) ? 'more' : 'done';
  }

  /** Publishes one batch; returns how many rows were confirmed. */
  async relayOnce(): Promise<number> {
    // The claim rides with START TRANSACTION (one round trip): a relay runs this on each of its
    // service's outbox commits, and on its poll. Nothing claimed: rolled back.
    const outcome = await inTransactionStartedWith<OutboxRow, number>(this.dataSource, claimStatement(this.options.batchSize ?? 500), async (tx, rows) =>
      rows.length === 0 ? undefined : this.publish(tx, rows),
    );
    return outcome?.result ?? 0;
  }

  /** Sends the claimed rows with confirms; marks the confirmed ones (with the commit), defers the unroutable ones. */
  private async publish(tx: EntityManager, rows: OutboxRow[]): Promise<TransactionOutcome<number>> {
    const { confirmed, unroutable } = await this.publisher.publishBatch(rows.map((row) => this.message(row.id, row.event_type, row.body, row.correlation_id ?? undefined)));
    const marks: PipelinedStatement[] = confirmed.length > 0 ? [markPublished(confirmed)] : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of unroutable) {
      const row = byId.get(id)!;
      this.failures.inc({ reason: 'unroutable' });
      this.logger.error('Outbox event was unroutable; will retry', { eventId: row.id, type: row.event_type, attempts: row.attempts + 1 });
      await tx.query(
        `UPDATE outbox SET attempts = attempts + 1, last_error = 'unroutable',
           available_at = now() + make_interval(secs => LEAST(300, power(2, attempts)))
         WHERE id = $1`,
        [row.id],
      );
    }
    for (const id of confirmed) this.published.inc({ type: byId.get(id)!.event_type });
    return { result: confirmed.length, atCommit: marks };
  }

  private async listen(generation: number): Promise<void> {
    while (this.running && generation === this.generation) {
      const client = new Client({ connectionString: this.databaseUrl });
      // Listened to before connecting: an error event nobody hears ends the process.
      const lost = new Promise<void>((resolve) => {
        client.on('error', () => resolve());
        client.on('end', () => resolve());
      });
      try {
        await client.connect();
        await client.query('LISTEN keyward_outbox');
        this.listener = client;
        client.on('notification', ({ payload }) => {
          // Another service's commit is its relay's to publish; anything else (a reconciler, a
          // script, an unnamed writer) wakes every relay.
          const other = payload !== undefined && payload !== this.options.application && RELAYING_POOLS.has(payload);
          if (!other || !this.options.application) {
            this.notified = true;
            this.task.wake();
          }
        });
        await lost;
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

/** Confirmed rows marked published (a row already marked, by another relay or its writer, is left as it is). */
function markPublished(ids: string[]): PipelinedStatement & { values: unknown[] } {
  // One id (a writer's lone event, the usual case) in a form of its own.
  return oneOrMany(
    ids,
    { name: 'outbox_mark_published_one', text: 'UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = $1::uuid AND published_at IS NULL' },
    { name: 'outbox_mark_published', text: 'UPDATE outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[]) AND published_at IS NULL' },
  );
}

/** The claim, with its one value as a literal (it rides with START TRANSACTION as a simple query). */
function claimStatement(batchSize: number): string {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`Outbox relay batch size must be a positive integer, not ${batchSize}`);
  return `SELECT id, event_type, payload::text AS body, payload->>'correlationId' AS correlation_id, attempts FROM outbox
    WHERE published_at IS NULL AND available_at <= now()
    ORDER BY seq LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`;
}

/**
 * How long until the first unpublished row is the relays' to take (ms, ≤ 0: now); null when every
 * row is published. A row available now answers at once (the backlog after a broker outage is
 * not read whole every poll); only otherwise are the waiting rows (those in their writer's
 * grace, a handful) read for the earliest.
 */
const NEXT_AVAILABLE = `SELECT CASE WHEN EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND available_at <= now()) THEN 0
         ELSE (SELECT ceil(extract(epoch FROM min(available_at) - clock_timestamp()) * 1000)::float8 FROM outbox WHERE published_at IS NULL)
       END AS "inMs"`;
