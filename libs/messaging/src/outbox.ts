import { EntityManager } from 'typeorm';
import { EventEnvelope, isCheckedEvent, parseEvent } from '@keyward/contracts';

/**
 * The only way to publish: events are written to the outbox inside the caller's transaction,
 * so they commit with the state change or not at all. Each is checked against its strict schema
 * first: an unknown field fails here, before anything is stored.
 */
export const Outbox = {
  async stage(manager: EntityManager, ...events: EventEnvelope[]): Promise<void> {
    if (events.length === 0) return;
    // createEvent's envelopes are checked and frozen; anything else is checked here.
    const checked = events.map((event) => (isCheckedEvent(event) ? event : parseEvent(event)));
    const values: unknown[] = [];
    const rows = checked.map((event, i) => {
      values.push(event.id, event.type, event.tenantId, JSON.stringify(event));
      const o = i * 4;
      return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}::jsonb)`;
    });
    await manager.query(`INSERT INTO outbox (id, event_type, tenant_id, payload) VALUES ${rows.join(', ')}`, values);
  },
};
