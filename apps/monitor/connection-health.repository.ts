import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { returnedRows } from '@keyward/messaging';
import { arrayLiteral, HealthState, Locks, LOCKS, PipelinedStatement, preparedQuery } from '@keyward/persistence';
import type { DegradeReason, FailureWindow, HealthSituation, ReconnectReason } from './health-decisions';
import type { FailureRecord } from './failure-report-scrub';
import { LOCK_HEALTH, RECORD_FAILURES, PRUNE_FAILURES, RECORD_IGNORED_FAILURE, RECORD_IGNORED_FAILURES } from './failure-window.sql';
import { MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { ADVANCE_PROBES, DUE_PROBES, PROBE_SOON_AFTER_INCIDENT, PROBES_IN_LAST_MINUTE, START_MONITORING_ACTIVE } from './probe-schedule.sql';

/** The locked health row: the decisions' situation, and what the services write from it. */
export interface LockedHealth extends HealthSituation {
  tenantId: string;
  companyId: string | null;
}

/** One failure of a batch as recorded: the tenant's locked row, the window after it, and the tenant's share of the provider signal. */
export interface RecordedFailure extends LockedHealth, FailureWindow {
  eventId: string;
  reportedCredentialId: string | null;
  failingBefore: boolean;
  unreachableBefore: boolean;
  failingAfter: boolean;
  unreachableAfter: boolean;
}

export type DueProbe = { tenantId: string; credentialId: string; state: HealthState };

/**
 * The only writer of `connection_health` and `auth_failures` (the monitor owns both). Every method
 * runs in the caller's transaction. A row counts only while its credential is the tenant's active
 * one; `startMonitoringActive` starts a fresh row when that changed. What a change means is decided
 * in `health-decisions.ts`; the statements here carry it out.
 */
@Injectable()
export class ConnectionHealthRepository {
  private readonly windowSeconds: number;
  private readonly intervalSeconds: number;

  constructor(
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
  ) {
    this.windowSeconds = config.monitor.failureWindowSeconds;
    this.intervalSeconds = config.monitor.probeIntervalHours * 3600;
  }

  async lock(tx: EntityManager, tenantId: string): Promise<LockedHealth | undefined> {
    const [row] = await preparedQuery<LockedHealth>(tx, 'monitor_lock_health', LOCK_HEALTH, [tenantId, this.windowSeconds]);
    return row;
  }

  /** Locks, records the failure and counts the window (the batch's statement, for one); undefined: repair the row first. */
  async recordFailure(tx: EntityManager, f: FailureRecord): Promise<(LockedHealth & FailureWindow) | undefined> {
    const [row] = await this.recordFailures(tx, [f]);
    return row;
  }

  /**
   * `recordFailure` for a batch in one round trip (ADR 0035): the tenants' rows locked in one order,
   * every failure recorded, each with the window it would have had recorded alone, in order. Failures
   * of tenants without a row for their active key are not in the answer (nor recorded): repair first.
   */
  async recordFailures(tx: EntityManager, failures: FailureRecord[]): Promise<RecordedFailure[]> {
    if (failures.length === 0) return [];
    const values = [...failureColumns(failures), this.windowSeconds];
    // A row it waited for may have changed after its snapshot: it wrote nothing, and holds the lock now (ADR 0041).
    for (let run = 1; ; run++) {
      const rows = await preparedQuery<RecordedFailure & { stale: boolean }>(tx, 'monitor_record_failures', RECORD_FAILURES, values);
      if (!rows[0]?.stale) return rows;
      if (run === 3) throw new Error('Health rows kept changing while the batch locked them; the batch is handled one by one');
    }
  }

  /** `recordIgnoredFailure` for several failures in one statement. */
  async recordIgnoredFailures(tx: EntityManager, failures: FailureRecord[]): Promise<void> {
    if (failures.length === 0) return;
    await tx.query(RECORD_IGNORED_FAILURES, failureColumns(failures));
  }

  /** A failure with no current row to count against (no active connection): kept for review only. */
  async recordIgnoredFailure(tx: EntityManager, f: FailureRecord): Promise<void> {
    await tx.query(RECORD_IGNORED_FAILURE, [f.eventId, f.tenantId, f.credentialId, f.status, f.source, f.endpoint, f.observedAt]);
  }

  /** Forgets failures older than the retention (they no longer count and incident review is done). */
  async pruneFailures(tx: EntityManager, retentionDays: number): Promise<number> {
    const rows = await tx.query<unknown[]>(PRUNE_FAILURES, [retentionDays]);
    return rows.length;
  }

  /**
   * Fresh healthy rows for active connections whose health row is missing or belongs to another
   * credential — of one tenant, or of all (the scheduler's repair round), or of those whose
   * connection row changed since a moment (its rounds in between). Returns their tenants.
   */
  async startMonitoringActive(tx: EntityManager, scope: { tenantId?: string; changedSince?: Date } = {}): Promise<string[]> {
    const rows = await tx.query<{ tenant_id: string }[]>(START_MONITORING_ACTIVE, [this.intervalSeconds, scope.tenantId ?? null, scope.changedSince ?? null]);
    return rows.map((r) => r.tenant_id);
  }

  /**
   * Gives an active connection a fresh, healthy row for its active credential when it has none or
   * one for another credential. Returns whether it did, and the state the replaced row was in.
   */
  async startMonitoringTenant(tx: EntityManager, tenantId: string): Promise<{ started: boolean; replacedState: HealthState | null }> {
    const [previous] = await tx.query<{ state: HealthState }[]>(`SELECT state FROM connection_health WHERE tenant_id = $1 FOR UPDATE`, [tenantId]);
    const started = (await this.startMonitoringActive(tx, { tenantId })).length > 0;
    return { started, replacedState: started ? (previous?.state ?? null) : null };
  }

  /** Degraded, and the key's revalidation asked for: asked again if no answer comes within the timeout. */
  async degrade(tx: EntityManager, tenantId: string, reason: DegradeReason, incidentId: string): Promise<Date> {
    return this.since(
      tx,
      `UPDATE connection_health SET state = 'degraded', reason = $2, since = now(), incident_id = $3,
         revalidate_requested_at = now(), next_probe_at = now() + make_interval(secs => $4), updated_at = now()
       WHERE tenant_id = $1 RETURNING since`,
      [tenantId, reason, incidentId, this.timings.revalidationTimeoutMs / 1000],
    );
  }

  /** `degrade` for several tenants whose rows the transaction holds; returns since when, by tenant. */
  async degradeMany(tx: EntityManager, degrades: { tenantId: string; reason: DegradeReason; incidentId: string }[]): Promise<Map<string, Date>> {
    if (degrades.length === 0) return new Map();
    const rows = returnedRows<{ tenant_id: string; since: Date }>(
      await tx.query(
        `UPDATE connection_health h SET state = 'degraded', reason = t.reason, since = now(), incident_id = t.incident_id,
           revalidate_requested_at = now(), next_probe_at = now() + make_interval(secs => $4), updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::uuid[]) AS t(tenant_id, reason, incident_id)
         WHERE h.tenant_id = t.tenant_id
         RETURNING h.tenant_id, h.since`,
        [degrades.map((d) => d.tenantId), degrades.map((d) => d.reason), degrades.map((d) => d.incidentId), this.timings.revalidationTimeoutMs / 1000],
      ),
    );
    return new Map(rows.map((r) => [r.tenant_id, r.since]));
  }

  /** Healthy: the incident closes; a healthy row keeps its place in the probe interval. */
  async markHealthy(tx: EntityManager, tenantId: string): Promise<Date> {
    return this.since(
      tx,
      `UPDATE connection_health SET state = 'healthy', reason = NULL, missing_scopes = NULL,
         since = CASE WHEN state = 'healthy' THEN since ELSE now() END, incident_id = NULL, auth_failures = 0,
         revalidate_requested_at = NULL, last_validated_at = now(),
         next_probe_at = CASE WHEN state = 'healthy' AND reason IS NULL AND next_probe_at > now() THEN next_probe_at
                              ELSE now() + make_interval(secs => $2) END,
         updated_at = now()
       WHERE tenant_id = $1 RETURNING since`,
      [tenantId, this.intervalSeconds],
    );
  }

  /** Reconnect required, its alert recorded as sent for the incident. */
  async requireReconnect(tx: EntityManager, tenantId: string, reason: ReconnectReason, missingScopes: string[] | null, incidentId: string): Promise<Date> {
    return this.since(
      tx,
      `UPDATE connection_health SET state = 'reconnect_required', reason = $2, missing_scopes = $3,
         since = CASE WHEN state = 'reconnect_required' THEN since ELSE now() END,
         incident_id = $4, alerted_incident_id = $4, revalidate_requested_at = NULL,
         next_probe_at = now() + make_interval(secs => $5), updated_at = now()
       WHERE tenant_id = $1 RETURNING since`,
      [tenantId, reason, missingScopes, incidentId, this.intervalSeconds],
    );
  }

  /** No verdict: the state stays; asked again after a delay that grows with the incident's age, jittered. */
  async retryLater(tx: EntityManager, tenantId: string, reason: 'pleo_unreachable' | 'pleo_rate_limited'): Promise<void> {
    await tx.query(
      `UPDATE connection_health SET reason = $4, revalidate_requested_at = NULL,
         next_probe_at = now() + least(greatest(now() - since, make_interval(secs => $2)), make_interval(secs => $3)) * (0.8 + random() * 0.4),
         updated_at = now()
       WHERE tenant_id = $1`,
      [tenantId, this.timings.unreachableRetryMinMs / 1000, this.timings.unreachableRetryMaxMs / 1000, reason],
    );
  }

  /**
   * A compromised key: the row (existing, else new when the key is known) turns reconnect_required
   * with its alert recorded as sent, and is not probed. Returns since when.
   */
  async recordCompromise(tx: EntityManager, tenantId: string, credentialId: string | null, incidentId: string, hasRow: boolean): Promise<Date> {
    if (hasRow) {
      return this.since(
        tx,
        `UPDATE connection_health SET credential_id = coalesce($3::uuid, credential_id), state = 'reconnect_required', reason = 'key_compromised',
           missing_scopes = NULL, since = now(), auth_failures = 0, last_auth_failure_at = NULL,
           incident_id = $2, alerted_incident_id = $2, revalidate_requested_at = NULL, next_probe_at = NULL, updated_at = now()
         WHERE tenant_id = $1 RETURNING since`,
        [tenantId, incidentId, credentialId],
      );
    }
    const since = new Date();
    if (credentialId) {
      await tx.query(
        `INSERT INTO connection_health (tenant_id, credential_id, state, reason, since, auth_failures, incident_id, alerted_incident_id, updated_at)
         VALUES ($1, $2, 'reconnect_required', 'key_compromised', $3, 0, $4, $4, now())`,
        [tenantId, credentialId, since, incidentId],
      );
    }
    return since;
  }

  /** A retired key (one credential, or all of an uninstalled tenant's) is not probed any more. */
  async stopProbing(tx: EntityManager, tenantId: string, credentialId?: string): Promise<void> {
    await tx.query(`UPDATE connection_health SET next_probe_at = NULL, updated_at = now() WHERE tenant_id = $1 AND ($2::uuid IS NULL OR credential_id = $2)`, [tenantId, credentialId ?? null]);
  }

  /**
   * After a provider incident: every healthy tenant that failed during it (or found Pleo
   * unreachable) is probed soon. Rows a handler holds are skipped; that handler judges them itself.
   */
  async probeSoonAfterIncident(tx: EntityManager, openedAt: Date): Promise<void> {
    await tx.query(PROBE_SOON_AFTER_INCIDENT, [openedAt, this.windowSeconds]);
  }

  /**
   * Sent with the start of a claim's transaction, in one round trip: the claim lock tried (one
   * replica claims probes at a time; `{ locked }` false while another one is at it), then the probes
   * asked for in the minute before `at` (default: Postgres' now) by every replica (`{ recent }`),
   * counted once the lock is held, so a previous holder's probes are in the count.
   */
  probeClaimStart(at?: Date): PipelinedStatement[] {
    return [Locks.tryHoldStatement(LOCKS.probeClaim()), { name: 'probes_in_last_minute', text: PROBES_IN_LAST_MINUTE, values: [at ?? null] }];
  }

  /**
   * Claims up to `limit` due probes of active keys, skipping rows other transactions hold. Each
   * keeps its place in the interval; one far behind starts a new cycle from now; one waiting for an
   * answer (degraded, or Pleo unreachable) is asked again after the revalidation timeout. `at`
   * stands for now when given (simulated time in bench:probes); otherwise Postgres' clock.
   */
  async claimDueProbes(tx: EntityManager, limit: number, at?: Date): Promise<DueProbe[]> {
    const due = await tx.query<DueProbe[]>(DUE_PROBES, [limit, at ?? null]);
    if (due.length === 0) return due;
    await tx.query(ADVANCE_PROBES, [due.map((d) => d.tenantId), this.intervalSeconds, this.timings.revalidationTimeoutMs / 1000, at ?? null]);
    return due;
  }

  private async since(tx: EntityManager, sql: string, values: unknown[]): Promise<Date> {
    const [row] = returnedRows<{ since: Date }>(await tx.query(sql, values));
    return row.since;
  }
}

/** The failures' columns as array literals, in the order the batch statements bind them ($1–$7). */
function failureColumns(failures: FailureRecord[]): string[] {
  const column = (of: (f: FailureRecord) => string | number | null) => arrayLiteral(failures.map(of));
  return [column((f) => f.eventId), column((f) => f.tenantId), column((f) => f.credentialId), column((f) => f.status), column((f) => f.source), column((f) => f.endpoint), column((f) => f.observedAt)];
}
