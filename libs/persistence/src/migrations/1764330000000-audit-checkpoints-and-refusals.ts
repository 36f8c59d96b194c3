import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Bounded audit work (ADR 20).
 * - `audit_checkpoints` (owner: intake, the audit log's reader): the last entry of each tenant's
 *   chain that was verified, with its hash, so a read verifies only what was appended since.
 * - `access_refusals` (owner: intake): refused cross-tenant requests counted per targeted tenant,
 *   refusing tenant and hour. The audit log gets one entry per such window, not one per request.
 */
export class AuditCheckpointsAndRefusals1764330000000 implements MigrationInterface {
  name = 'AuditCheckpointsAndRefusals1764330000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_checkpoints (
        tenant_id text PRIMARY KEY,
        seq integer NOT NULL,
        hash char(64) NOT NULL,
        verified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE access_refusals (
        target_tenant_id text NOT NULL,
        session_tenant_id text NOT NULL,
        window_start timestamptz NOT NULL,
        refusals integer NOT NULL DEFAULT 1,
        first_at timestamptz NOT NULL DEFAULT now(),
        last_at timestamptz NOT NULL DEFAULT now(),
        last_route text NOT NULL,
        PRIMARY KEY (target_tenant_id, session_tenant_id, window_start)
      );
      CREATE INDEX access_refusals_by_age ON access_refusals (window_start);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE access_refusals; DROP TABLE audit_checkpoints;`);
  }
}
