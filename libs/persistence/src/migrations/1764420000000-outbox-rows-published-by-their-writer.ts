import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rows whose writer publishes them right after its commit are staged available only after a grace
 * (ADR 0051): NOTIFY keyward_outbox is sent only for a statement that inserted a row available now,
 * so those rows wake no relay. The trigger reads the statement's inserted rows (a transition table).
 */
export class OutboxRowsPublishedByTheirWriter1764420000000 implements MigrationInterface {
  name = 'OutboxRowsPublishedByTheirWriter1764420000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM inserted WHERE available_at <= now()) THEN
          PERFORM pg_notify('keyward_outbox', coalesce(current_setting('application_name', true), ''));
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`DROP TRIGGER outbox_inserted ON outbox`);
    await q.query(`CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER outbox_inserted ON outbox`);
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('keyward_outbox', coalesce(current_setting('application_name', true), ''));
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`);
  }
}
