import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the monitor's scheduler reads every second, by index instead of by reading every health
 * row (ADR 0034): the probes of the last minute (its rate budget), and the tenants that failed or
 * found Pleo unreachable within the failure window (the provider-incident signal). The
 * unreachable index names only `reason`, so an update that leaves `reason` alone stays a HOT
 * update. Its once-a-minute repair round reads the connections changed lately, by `updated_at`.
 */
export class ProbeSchedulingIndexes1764380000000 implements MigrationInterface {
  name = 'ProbeSchedulingIndexes1764380000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE INDEX connection_health_recent_probes ON connection_health (last_probe_at) WHERE last_probe_at IS NOT NULL;
      CREATE INDEX connection_health_recent_failures ON connection_health (last_auth_failure_at) WHERE last_auth_failure_at IS NOT NULL;
      CREATE INDEX connection_health_unreachable ON connection_health (tenant_id) WHERE reason = 'pleo_unreachable';
      CREATE INDEX connections_changed ON connections (updated_at);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX connections_changed;
      DROP INDEX connection_health_unreachable;
      DROP INDEX connection_health_recent_failures;
      DROP INDEX connection_health_recent_probes;
    `);
  }
}
