import { EntityManager } from 'typeorm';
import { EventEnvelope, isCheckedEvent, parseEvent } from '@keyward/contracts';
import { PipelinedStatement, preparedQuery } from '@keyward/persistence';

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

  /** `stage`'s statement, to send with others in one round trip (`pipelinedIn`); undefined for no events. */
  staging(events: EventEnvelope[]): PipelinedStatement | undefined {
    if (events.length === 0) return undefined;
    // createEvent's envelopes are checked and frozen; anything else is checked here.
    const checked = events.map((event) => (isCheckedEvent(event) ? event : parseEvent(event)));
    // One statement text whatever the count: Postgres plans it once per connection.
    return {
      name: 'outbox_stage',
      text: `INSERT INTO outbox (id, event_type, tenant_id, payload)
       SELECT id, type, tenant, payload
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS t(id, type, tenant, payload, n)
       ORDER BY n`,
      values: [checked.map((e) => e.id), checked.map((e) => e.type), checked.map((e) => e.tenantId), checked.map((e) => JSON.stringify(e))],
    };
  },
};
