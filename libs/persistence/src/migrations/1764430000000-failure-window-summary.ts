import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The failure window a record statement counted last, kept on the tenant's health row (ADR 0059):
 * the key and the window start it was counted for, the count and its 403s, its oldest and newest
 * failure. While every failure counted then is still in the window, the next batch starts from it
 * instead of counting `auth_failures` again. Written only by the record statement; NULL until then,
 * which means "count again".
 */
export class FailureWindowSummary1764430000000 implements MigrationInterface {
  name = 'FailureWindowSummary1764430000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE connection_health
        ADD COLUMN window_credential_id uuid,
        ADD COLUMN window_start_at timestamptz,
        ADD COLUMN window_failures integer,
        ADD COLUMN window_forbidden integer,
        ADD COLUMN window_oldest_at timestamptz,
        ADD COLUMN window_newest_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE connection_health
        DROP COLUMN window_credential_id, DROP COLUMN window_start_at, DROP COLUMN window_failures,
        DROP COLUMN window_forbidden, DROP COLUMN window_oldest_at, DROP COLUMN window_newest_at`);
  }
}
