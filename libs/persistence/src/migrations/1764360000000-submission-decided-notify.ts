import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A submission's answer is derived from its `submissions` row (superseded) and its `credentials`
 * row (rotation's decision). Whenever either changes, the deciding transaction queues
 * NOTIFY keyward_submission_decided with the tenant and submission ids (nothing else); Postgres
 * delivers it at commit, never on rollback. Intake's `Prefer: wait` requests wake on it and read
 * the rows again (ADR 0031).
 */
export class SubmissionDecidedNotify1764360000000 implements MigrationInterface {
  name = 'SubmissionDecidedNotify1764360000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION submission_decided_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_TABLE_NAME = 'credentials' THEN
          PERFORM pg_notify('keyward_submission_decided', jsonb_build_object('tenantId', NEW.tenant_id, 'submissionId', NEW.submission_id)::text);
        ELSE
          PERFORM pg_notify('keyward_submission_decided', jsonb_build_object('tenantId', NEW.tenant_id, 'submissionId', NEW.id)::text);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER credential_decided AFTER INSERT ON credentials
        FOR EACH ROW EXECUTE FUNCTION submission_decided_notify()`);
    await q.query(`
      CREATE TRIGGER credential_status_changed AFTER UPDATE OF status ON credentials
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION submission_decided_notify()`);
    await q.query(`
      CREATE TRIGGER submission_superseded AFTER UPDATE OF superseded_at ON submissions
        FOR EACH ROW WHEN (OLD.superseded_at IS NULL AND NEW.superseded_at IS NOT NULL) EXECUTE FUNCTION submission_decided_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER submission_superseded ON submissions`);
    await q.query(`DROP TRIGGER credential_status_changed ON credentials`);
    await q.query(`DROP TRIGGER credential_decided ON credentials`);
    await q.query(`DROP FUNCTION submission_decided_notify()`);
  }
}
