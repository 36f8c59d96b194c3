import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * owner: the secret store (local backend). A disabled version (after a compromise) keeps its
 * row for the audit trail, but its sealed value is erased and `disabled_at` says when.
 */
export class SecretVersionDisabled1764210000003 implements MigrationInterface {
  name = 'SecretVersionDisabled1764210000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE secret_versions ADD COLUMN disabled_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE secret_versions DROP COLUMN disabled_at`);
  }
}
