import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delayed retries live in Postgres, not in broker TTL queues (ADR 0013): a consumer commits the
 * retry here before it acks the failed delivery, and its own relay republishes the row when due,
 * with publisher confirms and `mandatory`, to the consumer's queue only.
 */
export class ScheduledRetries1764300000000 implements MigrationInterface {
  name = 'ScheduledRetries1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      -- every consumer writes its own rows (subscriber = its queue); its relay deletes them once confirmed.
      CREATE TABLE scheduled_retries (
        id bigserial PRIMARY KEY,
        subscriber text NOT NULL,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        tenant_id text NOT NULL,
        -- the event as delivered (schema-checked, so no key material) and keyward's own headers only
        payload jsonb NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}',
        attempt integer NOT NULL,
        last_error text,
        due_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        relay_attempts integer NOT NULL DEFAULT 0,
        relay_error text,
        -- a redelivered failure (crash between commit and ack) schedules nothing twice
        UNIQUE (subscriber, event_id, attempt)
      );
      CREATE INDEX scheduled_retries_due ON scheduled_retries (subscriber, due_at);
      CREATE INDEX scheduled_retries_event ON scheduled_retries (event_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE scheduled_retries`);
  }
}
