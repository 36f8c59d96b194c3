import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A connection check's answer is the validator's `credential.revalidated` audit entry carrying
 * the check id (ADR 24). Its transaction now queues NOTIFY keyward_submission_decided with the
 * tenant and check ids (nothing else), delivered at commit, so intake's `Prefer: wait` on a check
 * wakes on the answer as a submission's does (ADR 0031), instead of looking every 250 ms.
 */
export class CheckAnsweredNotify1764400000000 implements MigrationInterface {
  name = 'CheckAnsweredNotify1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION check_answered_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('keyward_submission_decided', jsonb_build_object('tenantId', NEW.tenant_id, 'checkId', NEW.details->>'checkId')::text);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER check_answered AFTER INSERT ON audit_log
        FOR EACH ROW WHEN (NEW.action = 'credential.revalidated' AND NEW.details ? 'checkId') EXECUTE FUNCTION check_answered_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER check_answered ON audit_log`);
    await q.query(`DROP FUNCTION check_answered_notify()`);
  }
}
