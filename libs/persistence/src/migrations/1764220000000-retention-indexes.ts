import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for age-based reads and clean-ups: the monitor's webhook worker looks up recent alert
 * events in the outbox by type, and each consumer prunes its old inbox rows.
 */
export class RetentionIndexes1764220000000 implements MigrationInterface {
  name = 'RetentionIndexes1764220000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX outbox_recent_by_type ON outbox (event_type, created_at)`);
    await q.query(`CREATE INDEX inbox_by_age ON inbox (consumer, processed_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX inbox_by_age`);
    await q.query(`DROP INDEX outbox_recent_by_type`);
  }
}
