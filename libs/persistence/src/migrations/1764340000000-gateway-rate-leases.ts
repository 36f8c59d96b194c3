import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * owner: gateway. The per-credential call budget shared by every gateway replica (ADR 0021):
 * replicas lease tokens in blocks; a lease counts against the budget for the sliding window
 * from when it was granted, and a replica gives back what it did not use when the lease ends.
 * One function call grants a lease under a per-credential advisory lock, so concurrent replicas
 * never grant more than the budget between them.
 */
export class GatewayRateLeases1764340000000 implements MigrationInterface {
  name = 'GatewayRateLeases1764340000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gateway_rate_leases (
        id bigserial PRIMARY KEY,
        credential_id uuid NOT NULL,
        leased_at timestamptz NOT NULL,
        tokens integer NOT NULL CHECK (tokens >= 0)
      );
      CREATE INDEX gateway_rate_leases_window ON gateway_rate_leases (credential_id, leased_at);

      -- Grants up to p_wanted tokens while the tokens leased in the last p_window_ms stay within
      -- p_budget. Each statement of a VOLATILE function sees what committed before it started, so
      -- the sum below, taken after the lock, includes every lease granted before.
      CREATE FUNCTION gateway_lease_tokens(p_credential uuid, p_wanted integer, p_budget integer, p_window_ms integer)
      RETURNS TABLE (lease_id bigint, granted integer, retry_after_ms integer)
      LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        v_now timestamptz;
        v_window interval := make_interval(secs => p_window_ms / 1000.0);
        v_used integer;
        v_oldest timestamptz;
        v_grant integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('gateway-rate:' || p_credential::text, 0));
        v_now := clock_timestamp();
        DELETE FROM gateway_rate_leases WHERE credential_id = p_credential AND leased_at <= v_now - v_window;
        SELECT coalesce(sum(tokens), 0), min(leased_at) FILTER (WHERE tokens > 0) INTO v_used, v_oldest
          FROM gateway_rate_leases WHERE credential_id = p_credential;
        v_grant := least(p_wanted, p_budget - v_used);
        IF v_grant <= 0 THEN
          RETURN QUERY SELECT NULL::bigint, 0,
            greatest(1, ceil(extract(epoch FROM (coalesce(v_oldest, v_now) + v_window - v_now)) * 1000))::integer;
          RETURN;
        END IF;
        RETURN QUERY INSERT INTO gateway_rate_leases (credential_id, leased_at, tokens)
          VALUES (p_credential, v_now, v_grant) RETURNING id, v_grant, 0;
      END $$;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION gateway_lease_tokens(uuid, integer, integer, integer); DROP TABLE gateway_rate_leases;`);
  }
}
