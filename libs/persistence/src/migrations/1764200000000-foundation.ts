import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The whole schema of ARCHITECTURE.md. Each table has one writing service (see the comments);
 * any service may read any table. No column anywhere holds key material: the only place a key
 * lives is a sealed row of `secret_versions` (local backend) or AWS Secrets Manager.
 */
export class Foundation1764200000000 implements MigrationInterface {
  name = 'Foundation1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      -- owner: intake. One row per key submission; the pending credential's metadata lives here.
      CREATE TABLE submissions (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        tenant_id text NOT NULL,
        credential_id uuid NOT NULL UNIQUE,
        secret_version_id text NOT NULL,
        last4 varchar(4) NOT NULL,
        fingerprint char(64) NOT NULL,
        replacing boolean NOT NULL,
        submitted_by text NOT NULL,
        correlation_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        superseded_at timestamptz,
        superseded_by uuid
      );
      CREATE INDEX submissions_tenant_newest ON submissions (tenant_id, seq DESC);

      -- owner: intake. Install session tokens, by hash only.
      CREATE TABLE install_sessions (
        token_hash char(64) PRIMARY KEY,
        tenant_id text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX install_sessions_expiry ON install_sessions (expires_at);

      -- owner: intake. A committed row here stops every read of that credential's key at once.
      CREATE TABLE revocations (
        credential_id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        reason text NOT NULL CHECK (reason IN ('compromised', 'uninstalled')),
        reported_by text NOT NULL,
        correlation_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX revocations_tenant ON revocations (tenant_id);

      -- owner: intake. Fixed-window counters for submission rate limits, shared by replicas.
      CREATE TABLE rate_limit_windows (
        bucket text NOT NULL,
        window_start timestamptz NOT NULL,
        hits integer NOT NULL,
        PRIMARY KEY (bucket, window_start)
      );

      -- owner: rotation. One row per tenant: the lifecycle state.
      CREATE TABLE connections (
        tenant_id text PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('not_connected', 'active', 'disabled', 'uninstalled')),
        company_id text,
        subject_type text CHECK (subject_type IN ('company', 'organization')),
        subject_id text,
        active_credential_id uuid,
        error_code text,
        error_detail jsonb,
        activated_at timestamptz,
        last_validated_at timestamptz,
        status_since timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      -- owner: rotation. Credentials keyward has decided on. Metadata only.
      CREATE TABLE credentials (
        id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        submission_id uuid NOT NULL,
        secret_version_id text NOT NULL,
        last4 varchar(4) NOT NULL,
        fingerprint char(64) NOT NULL,
        status text NOT NULL CHECK (status IN ('active', 'rejected', 'invalidated')),
        company_id text,
        subject_type text,
        subject_id text,
        scopes text[] NOT NULL DEFAULT '{}',
        rejection_reason text,
        rejection_detail jsonb,
        invalidated_reason text CHECK (invalidated_reason IN ('replaced', 'compromised', 'uninstalled')),
        created_at timestamptz NOT NULL DEFAULT now(),
        validated_at timestamptz,
        activated_at timestamptz,
        invalidated_at timestamptz
      );
      CREATE INDEX credentials_tenant ON credentials (tenant_id, created_at DESC);

      -- owner: validator. Transient validation failures (Pleo unreachable) for status reads.
      CREATE TABLE validation_attempts (
        credential_id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        first_failure_at timestamptz,
        last_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_error_code text,
        parked_at timestamptz
      );

      -- owner: monitor. Health of the tenant's active credential.
      CREATE TABLE connection_health (
        tenant_id text PRIMARY KEY,
        credential_id uuid NOT NULL,
        state text NOT NULL CHECK (state IN ('healthy', 'degraded', 'reconnect_required')),
        reason text,
        missing_scopes text[],
        since timestamptz NOT NULL DEFAULT now(),
        auth_failures integer NOT NULL DEFAULT 0,
        last_auth_failure_at timestamptz,
        incident_id uuid,
        alerted_incident_id uuid,
        revalidate_requested_at timestamptz,
        next_probe_at timestamptz,
        last_probe_at timestamptz,
        last_validated_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX connection_health_probe_due ON connection_health (next_probe_at);

      -- owner: monitor. Every auth.failed seen, for the sliding window and incident review.
      CREATE TABLE auth_failures (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        tenant_id text NOT NULL,
        credential_id uuid,
        status smallint NOT NULL,
        source text NOT NULL,
        endpoint text,
        counts_against_active boolean NOT NULL,
        observed_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX auth_failures_window ON auth_failures (tenant_id, observed_at DESC);
      CREATE INDEX auth_failures_recent ON auth_failures (observed_at DESC);

      -- owner: monitor. One row per webhook delivery attempt.
      CREATE TABLE alert_deliveries (
        id bigserial PRIMARY KEY,
        alert_event_id uuid NOT NULL,
        tenant_id text,
        kind text NOT NULL,
        attempt integer NOT NULL,
        status text NOT NULL CHECK (status IN ('delivered', 'failed')),
        response_status integer,
        error text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX alert_deliveries_event ON alert_deliveries (alert_event_id);

      -- owner: monitor. Pleo-side incidents (many tenants failing at once, or Pleo unreachable).
      CREATE TABLE provider_incidents (
        id uuid PRIMARY KEY,
        reason text NOT NULL,
        opened_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz,
        affected_tenants integer NOT NULL DEFAULT 0
      );
      CREATE UNIQUE INDEX provider_incidents_one_open ON provider_incidents ((true)) WHERE closed_at IS NULL;

      -- every service appends; nobody updates or deletes. Hash-chained per tenant.
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        tenant_id text NOT NULL,
        seq integer NOT NULL,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        credential_id uuid,
        last4 varchar(4),
        correlation_id text,
        details jsonb NOT NULL DEFAULT '{}',
        prev_hash char(64) NOT NULL,
        hash char(64) NOT NULL,
        UNIQUE (tenant_id, seq)
      );
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
      END $$;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

      -- every producer writes; the relay marks rows published. Transactional outbox.
      CREATE TABLE outbox (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        event_type text NOT NULL,
        tenant_id text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        available_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        published_at timestamptz
      );
      CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
      CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('keyward_outbox', '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

      -- every consumer writes its own rows. Processed event ids, for idempotent handling.
      CREATE TABLE inbox (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
      );

      -- owner: the secret store (local backend). Sealed key versions with AWS-like labels.
      CREATE TABLE secrets (
        name text PRIMARY KEY,
        tenant_id text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        deletion_scheduled_for timestamptz
      );
      CREATE TABLE secret_versions (
        secret_name text NOT NULL REFERENCES secrets (name),
        version_id text NOT NULL,
        tenant_id text NOT NULL,
        stages text[] NOT NULL DEFAULT '{}',
        ciphertext bytea NOT NULL,
        iv bytea NOT NULL,
        auth_tag bytea NOT NULL,
        wrapped_data_key bytea NOT NULL,
        master_key_id text NOT NULL,
        value_digest char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (secret_name, version_id)
      );
      CREATE INDEX secret_versions_master_key ON secret_versions (master_key_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE secret_versions; DROP TABLE secrets; DROP TABLE inbox;
      DROP TRIGGER outbox_inserted ON outbox; DROP FUNCTION outbox_notify(); DROP TABLE outbox;
      DROP TRIGGER audit_log_no_update ON audit_log; DROP FUNCTION audit_log_append_only(); DROP TABLE audit_log;
      DROP TABLE provider_incidents; DROP TABLE alert_deliveries; DROP TABLE auth_failures; DROP TABLE connection_health;
      DROP TABLE validation_attempts; DROP TABLE credentials; DROP TABLE connections;
      DROP TABLE rate_limit_windows; DROP TABLE revocations; DROP TABLE install_sessions; DROP TABLE submissions;
    `);
  }
}
