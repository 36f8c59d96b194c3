import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Call budgets shared by every replica of every service (`@keyward/rate-budgets`, ADR 0033):
 * the general form of the gateway's `gateway_lease_tokens` (ADR 0021), keyed by any name and
 * able to book a slot in the future. Written by whoever spends a budget, only through
 * `rate_budget_book` and the give-back of unused tokens.
 *
 * A budget allows `limit` tokens in any window of `window_ms` (left-open, right-closed). A
 * booking is placed no earlier than the latest booking of its budget (first come, first
 * served), so checking the one window that ends at the booking is enough to keep every window
 * within the limit. One call grants under a per-budget advisory lock.
 */
export class RateBudgetLeases1764370000000 implements MigrationInterface {
  name = 'RateBudgetLeases1764370000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rate_budget_leases (
        id bigserial PRIMARY KEY,
        budget text NOT NULL,
        starts_at timestamptz NOT NULL,
        tokens integer NOT NULL CHECK (tokens >= 0)
      );
      CREATE INDEX rate_budget_leases_window ON rate_budget_leases (budget, starts_at);

      -- Up to p_wanted tokens at the earliest moment (not before now, nor before the budget's
      -- latest booking) when the window ending there has room for one, if that moment is within
      -- p_horizon_ms; otherwise nothing, and how long until that moment. Postgres' clock decides.
      CREATE FUNCTION rate_budget_book(p_budget text, p_wanted integer, p_limit integer, p_window_ms double precision, p_horizon_ms double precision)
      RETURNS TABLE (lease_id bigint, granted integer, starts_in_ms double precision, starts_at_ms double precision, retry_after_ms double precision)
      LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        v_window interval := make_interval(secs => p_window_ms / 1000.0);
        v_now timestamptz;
        v_at timestamptz;
        v_full_until timestamptz;
        v_used integer;
        v_grant integer;
        v_wait double precision;
      BEGIN
        IF p_wanted < 1 OR p_limit < 1 OR p_window_ms <= 0 OR p_horizon_ms < 0 THEN
          RAISE EXCEPTION 'rate_budget_book: wanted and limit must be at least 1, the window positive, the horizon not negative';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('rate-budget:' || p_budget, 0));
        v_now := clock_timestamp();
        DELETE FROM rate_budget_leases WHERE budget = p_budget AND starts_at <= v_now - v_window;
        SELECT greatest(v_now, max(starts_at)) INTO v_at FROM rate_budget_leases WHERE budget = p_budget AND tokens > 0;
        v_at := coalesce(v_at, v_now);
        -- The newest lease that, with the ones after it, leaves no room for one more token: the
        -- window has room once that lease has left it.
        SELECT s INTO v_full_until FROM (
          SELECT starts_at AS s, sum(tokens) OVER (ORDER BY starts_at DESC, id DESC) AS from_newest
            FROM rate_budget_leases WHERE budget = p_budget AND tokens > 0 AND starts_at > v_at - v_window
        ) leases WHERE from_newest >= p_limit ORDER BY s DESC LIMIT 1;
        IF v_full_until IS NOT NULL THEN v_at := greatest(v_at, v_full_until + v_window); END IF;
        v_wait := extract(epoch FROM (v_at - v_now)) * 1000;
        IF v_wait > p_horizon_ms THEN
          RETURN QUERY SELECT NULL::bigint, 0, NULL::double precision, NULL::double precision, v_wait;
          RETURN;
        END IF;
        SELECT coalesce(sum(tokens), 0) INTO v_used FROM rate_budget_leases WHERE budget = p_budget AND starts_at > v_at - v_window;
        v_grant := least(p_wanted, p_limit - v_used);
        RETURN QUERY INSERT INTO rate_budget_leases (budget, starts_at, tokens)
          VALUES (p_budget, v_at, v_grant) RETURNING id, v_grant, v_wait, extract(epoch FROM v_at)::double precision * 1000, 0::double precision;
      END $$;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION rate_budget_book(text, integer, integer, double precision, double precision); DROP TABLE rate_budget_leases;`);
  }
}
