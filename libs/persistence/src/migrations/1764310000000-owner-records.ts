import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an event's owner recorded when it published it, so consumers confirm an event against
 * the owner's table instead of taking its word (ADR 0015): the validator's verdicts and intake's
 * uninstall requests, each written in the transaction that stages the event, keyed by its id.
 * Also the redeliveries a worker counted per event, its delivery limit on any queue type.
 */
export class OwnerRecords1764310000000 implements MigrationInterface {
  name = 'OwnerRecords1764310000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      -- owner: validator. One row per key.validated / key.rejected / key.revalidated it published.
      CREATE TABLE validations (
        event_id uuid PRIMARY KEY,
        event_type text NOT NULL CHECK (event_type IN ('key.validated', 'key.rejected', 'key.revalidated')),
        tenant_id text NOT NULL,
        credential_id uuid NOT NULL,
        submission_id uuid,
        outcome text NOT NULL,
        company_id text,
        subject_type text,
        scopes text[] NOT NULL DEFAULT '{}',
        missing_scopes text[],
        reason text,
        message text,
        decided_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX validations_by_credential ON validations (tenant_id, credential_id, decided_at);

      -- owner: intake. One row per connection.uninstalled it published.
      CREATE TABLE uninstalls (
        event_id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        requested_by text NOT NULL,
        correlation_id text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX uninstalls_by_tenant ON uninstalls (tenant_id, requested_at);

      -- owner: each consumer, its own rows. Deliveries of an event that were not settled (crashes).
      CREATE TABLE redeliveries (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        deliveries integer NOT NULL,
        last_delivered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE redeliveries; DROP TABLE uninstalls; DROP TABLE validations;`);
  }
}
