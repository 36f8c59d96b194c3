import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * "The newest pending submission" asked one way by everyone (issue "One way to do each thing",
 * item 4): a tenant's newest submission (max seq) while it is not superseded and nothing is
 * decided about its credential. Whether it is revoked is a separate question (`revocationOf`),
 * asked where it matters. A filter on tenant_id reaches the index submissions_tenant_newest
 * through the DISTINCT ON, so reading one tenant costs one index probe.
 */
export class NewestPendingSubmissions1764390000000 implements MigrationInterface {
  name = 'NewestPendingSubmissions1764390000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE VIEW newest_pending_submissions AS
        SELECT s.* FROM (SELECT DISTINCT ON (tenant_id) * FROM submissions ORDER BY tenant_id, seq DESC) s
         WHERE s.superseded_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = s.credential_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW newest_pending_submissions`);
  }
}
