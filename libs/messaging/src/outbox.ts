import { DataSource, EntityManager } from 'typeorm';
import { EventEnvelope, isCheckedEvent, parseEvent } from '@keyward/contracts';
import { PipelinedStatement, preparedQuery } from '@keyward/persistence';

/**
 * How long rows their writer publishes itself (`staging(events, true)`) are left to it: a relay
 * takes them only after this, should the writer fail to publish or stop first (ADR 0051).
 */
export const WRITER_GRACE_SECONDS = 5;

type WriterPublisher = (events: EventEnvelope[]) => void;
const writerPublishers = new WeakMap<DataSource, WriterPublisher>();

/**
 * The publisher of events right after their transaction commits, one per database pool: the
 * service's outbox relay registers it for its pool while it runs (ADR 0051). Staging code asks
 * `active` for its pool before it stages, and hands the events over once the transaction committed.
 */
export const CommittedEvents = {
  /** Registers `dataSource`'s publisher; answers how to take it back. */
  register(dataSource: DataSource, publish: WriterPublisher): () => void {
    writerPublishers.set(dataSource, publish);
    return () => {
      if (writerPublishers.get(dataSource) === publish) writerPublishers.delete(dataSource);
    };
  },

  /** Whether a publisher runs for this pool: only then are rows staged for their writer to publish. */
  active(dataSource: DataSource): boolean {
    return writerPublishers.has(dataSource);
  },

  /** Committed events staged with `staging(events, true)`, to the broker now; a relay takes any left after the grace. */
  publish(dataSource: DataSource, events: EventEnvelope[]): void {
    if (events.length > 0) writerPublishers.get(dataSource)?.(events);
  },
};

/**
 * The only way to publish: events are written to the outbox inside the caller's transaction,
 * so they commit with the state change or not at all. Each is checked against its strict schema
 * first: an unknown field fails here, before anything is stored.
 */
export const Outbox = {
  async stage(manager: EntityManager, ...events: EventEnvelope[]): Promise<void> {
    const statement = Outbox.staging(events);
    if (statement) await preparedQuery(manager, statement.name!, statement.text, statement.values!);
  },

  /**
   * `stage`'s statement, to send with others in one round trip (`pipelinedIn`); undefined for no
   * events. `byWriter`: the writer publishes them right after its commit (`CommittedEvents`), so
   * they wake no relay and are left to the writer for `WRITER_GRACE_SECONDS`.
   */
  staging(events: EventEnvelope[], byWriter = false): PipelinedStatement | undefined {
    if (events.length === 0) return undefined;
    // createEvent's envelopes are checked and frozen; anything else is checked here.
    const checked = events.map((event) => (isCheckedEvent(event) ? event : parseEvent(event)));
    // One statement text whatever the count: Postgres plans it once per connection.
    return {
      name: 'outbox_stage',
      text: `INSERT INTO outbox (id, event_type, tenant_id, payload, available_at)
       SELECT id, type, tenant, payload, now() + make_interval(secs => $5)
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS t(id, type, tenant, payload, n)
       ORDER BY n`,
      values: [checked.map((e) => e.id), checked.map((e) => e.type), checked.map((e) => e.tenantId), checked.map((e) => JSON.stringify(e)), byWriter ? WRITER_GRACE_SECONDS : 0],
    };
  },
};
