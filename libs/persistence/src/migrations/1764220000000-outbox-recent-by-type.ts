import { MigrationInterface, QueryRunner } from 'typeorm';

/** The monitor's webhook worker looks up recent alert events in the outbox by type and age. */
export class OutboxRecentByType1764220000000 implements MigrationInterface {
  name = 'OutboxRecentByType1764220000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX outbox_recent_by_type ON outbox (event_type, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX outbox_recent_by_type`);
  }
}
