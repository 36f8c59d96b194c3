import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * owner: intake. An install session remembers where the connect page sends the customer back
 * (`return_url`) and the submission it made (`submission_id`): once that key is accepted the
 * session is used up. `alert_redeliveries` holds an operator's request to send an alert again;
 * the monitor's webhook worker (owner of `alert_deliveries`) acts on it.
 */
export class ConnectPageAndRedeliveries1764350000000 implements MigrationInterface {
  name = 'ConnectPageAndRedeliveries1764350000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE install_sessions ADD COLUMN return_url text, ADD COLUMN submission_id uuid`);
    await q.query(`
      CREATE TABLE alert_redeliveries (
        id bigserial PRIMARY KEY,
        alert_event_id uuid NOT NULL,
        requested_by text NOT NULL,
        correlation_id text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX alert_redeliveries_event ON alert_redeliveries (alert_event_id, requested_at)`);
    // Connection checks look up the validator's answer by check id within one tenant's log.
    await q.query(`CREATE INDEX audit_log_revalidation_checks ON audit_log (tenant_id, (details->>'checkId')) WHERE action = 'credential.revalidated'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_log_revalidation_checks`);
    await q.query(`DROP TABLE alert_redeliveries`);
    await q.query(`ALTER TABLE install_sessions DROP COLUMN return_url, DROP COLUMN submission_id`);
  }
}
