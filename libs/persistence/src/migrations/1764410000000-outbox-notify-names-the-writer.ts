import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * NOTIFY keyward_outbox now carries the writer's `application_name` (every keyward pool sets
 * `keyward-<service>`), so a service's relay wakes at once for its own commits and leaves other
 * services' rows to their relays, picking them up itself on its poll only if they were left
 * (ADR 0048). Every relay used to wake, and claim nothing, on every outbox commit of every service.
 */
export class OutboxNotifyNamesTheWriter1764410000000 implements MigrationInterface {
  name = 'OutboxNotifyNamesTheWriter1764410000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('keyward_outbox', coalesce(current_setting('application_name', true), ''));
        RETURN NULL;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('keyward_outbox', '');
        RETURN NULL;
      END $$`);
  }
}
