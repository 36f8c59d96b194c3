import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { causedBy, createEvent, EventEnvelope } from '@keyward/contracts';
import { Inbox, Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { AuditLog, confirmVerdict, HealthState, readValidation } from '@keyward/persistence';
import { ConnectionHealthRepository as Health, FailureWindow, LockedHealth } from './connection-health.repository';
import { scrubEndpoint, scrubSource } from './failure-report-scrub';
import { MonitorMetrics } from './monitor-metrics';
import { MONITOR_ACTOR, MONITOR_CONSUMER, MONITOR_PRODUCER, MONITOR_TIMINGS, MonitorTimings } from './monitor-options';
import { ProviderIncidentService } from './provider-incident.service';
import { reconnectionAlert, ReconnectReason } from './reconnection-alert';

export type AuthFailureDecision =
  | 'duplicate'
  | 'not_counted' // not the active credential, or no active connection
  | 'counted' // below the threshold, or the connection is already degraded / reconnect_required
  | 'degraded'
  | 'suppressed_by_provider_incident';

export type RevalidationDecision = 'duplicate' | 'unconfirmed' | 'stale' | 'recovered' | 'confirmed_healthy' | 'reconnect_required' | 'already_reconnect_required' | 'retry_later';

/**
 * Where an auth failure turns into a degraded connection, a revalidation and, when Pleo confirms
 * the key is dead, one reconnection alert. Every decision reads the database state under the
 * tenant's health-row lock, so replicas and out-of-order events agree; every outcome commits with
 * its events (outbox) and its inbox row.
 */
@Injectable()
export class ConnectionHealthService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) private readonly config: KeywardConfig,
    @Inject(MONITOR_TIMINGS) private readonly timings: MonitorTimings,
    @Inject(ProviderIncidentService) private readonly provider: ProviderIncidentService,
    @Inject(MonitorMetrics) private readonly metrics: MonitorMetrics,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
  ) {}

  private get windowSeconds(): number {
    return this.config.monitor.failureWindowSeconds;
  }

  private get intervalSeconds(): number {
    return this.config.monitor.probeIntervalHours * 3600;
  }

  async onAuthFailed(event: EventEnvelope<'auth.failed'>): Promise<AuthFailureDecision> {
    const { tenantId, data } = event;
    const failure = {
      eventId: event.id,
      tenantId,
      credentialId: data.credentialId ?? null,
      status: data.status,
      // Free text from other backends, kept for 90 days: never a query string or credentials.
      source: scrubSource(data.source),
      endpoint: scrubEndpoint(data.endpoint),
      observedAt: data.observedAt,
    };
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx): Promise<AuthFailureDecision> => {
      // The usual case in one round trip; a missing or outdated health row takes the full path.
      const fast = await Health.lockRecordAndCount(tx, failure, this.windowSeconds);
      let health: LockedHealth;
      let window: FailureWindow;
      if (fast) {
        // The old key failing after a rotation is expected: on record, never against the new key.
        if (!fast.counts) return 'not_counted';
        health = fast;
        window = fast;
      } else {
        const locked = await this.lockCurrent(tx, event);
        const counts =
          locked !== undefined &&
          locked.connectionStatus === 'active' &&
          locked.credentialId === locked.activeCredentialId &&
          (data.credentialId === undefined || data.credentialId === locked.activeCredentialId);
        if (!counts) {
          await Health.recordIgnoredFailure(tx, failure);
          return 'not_counted';
        }
        health = locked;
        window = await Health.recordAndCount(tx, failure, locked.credentialId, locked.windowStart);
      }
      // Once per incident: a degraded or reconnect_required connection only counts.
      if (health.state !== 'healthy') return 'counted';
      const breached =
        window.failures >= this.config.monitor.failureThreshold ||
        // A 403 means lost permissions, unless the key was just proven complete (then it needs the count).
        (window.forbidden > 0 && !health.recentlyValidated);
      if (!breached) return 'counted';
      if (health.openProviderIncidentId) return 'suppressed_by_provider_incident';
      const incident = await this.provider.openIfWidespread(tx, event);
      if (incident) {
        if (incident.opened) this.metrics.providerIncidents.inc({ event: 'opened' });
        return 'suppressed_by_provider_incident';
      }
      const reason = window.failures >= this.config.monitor.failureThreshold ? 'auth_failures' : 'forbidden';
      await this.degrade(tx, event, health, reason, window.failures);
      return 'degraded';
    });

    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision !== 'duplicate') this.metrics.authFailures.inc({ status: String(data.status), counted: String(decision !== 'not_counted') });
    if (decision === 'degraded') {
      this.metrics.transitions.inc({ state: 'degraded', reason: 'auth_failures' });
      this.metrics.probes.inc({ reason: 'auth_failures' });
    }
    if (decision === 'suppressed_by_provider_incident') {
      this.logger.debug('Failure threshold reached during a provider incident; connection left as is', { tenantId });
    }
    return decision;
  }

  async onRevalidated(event: EventEnvelope<'key.revalidated'>): Promise<RevalidationDecision> {
    // The outcome is the one the validator recorded for this event, not what the message says.
    let data = event.data;
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx): Promise<RevalidationDecision> => {
      const confirmed = confirmVerdict(event, await readValidation(tx, event.id));
      if (!confirmed) return this.unconfirmed(tx, event);
      data = confirmed;
      const health = await this.lockCurrent(tx, event);
      if (
        !health ||
        health.connectionStatus !== 'active' ||
        health.credentialId !== data.credentialId ||
        health.activeCredentialId !== data.credentialId
      ) {
        return 'stale'; // a result for a credential that is no longer the active one changes nothing
      }
      switch (data.outcome) {
        case 'valid':
          return this.markHealthy(tx, event, health);
        case 'invalid':
          return this.requireReconnect(tx, event, health, 'invalid_key', null);
        case 'insufficient_scopes': {
          const granted = new Set(data.scopes);
          const missing = data.missingScopes?.length ? data.missingScopes : this.config.pleo.requiredScopes.filter((s) => !granted.has(s));
          return this.requireReconnect(tx, event, health, 'insufficient_scopes', missing);
        }
        case 'unreachable':
          return this.retryLater(tx, event, health, 'pleo_unreachable');
        case 'rate_limited':
          return this.retryLater(tx, event, health, 'pleo_rate_limited');
      }
    });
    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision === 'recovered') this.metrics.transitions.inc({ state: 'healthy', reason: 'revalidated' });
    if (decision === 'reconnect_required') {
      const reason = data.outcome === 'invalid' ? 'invalid_key' : 'insufficient_scopes';
      this.metrics.transitions.inc({ state: 'reconnect_required', reason });
      this.metrics.alerts.inc({ kind: 'reconnection_required', reason });
    }
    return decision;
  }

  /**
   * An integrator's "test now" (intake's connection.check_requested): the monitor, sole producer
   * of key.revalidate, asks the validator for the active key with the check's id; the answer
   * comes back as key.revalidated like any probe's.
   */
  async onCheckRequested(event: EventEnvelope<'connection.check_requested'>): Promise<'requested' | 'stale' | 'duplicate'> {
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx): Promise<'requested' | 'stale'> => {
      const connection = await Health.connection(tx, event.tenantId);
      if (connection?.status !== 'active' || connection.activeCredentialId !== event.data.credentialId) return 'stale';
      await Outbox.stage(
        tx,
        createEvent('key.revalidate', causedBy(event, MONITOR_PRODUCER), { credentialId: event.data.credentialId, reason: 'manual', checkId: event.id }),
      );
      return 'requested';
    });
    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision === 'requested') this.metrics.probes.inc({ reason: 'manual' });
    else if (decision === 'stale') this.logger.info('Connection check for a key that is no longer active; nothing asked', { tenantId: event.tenantId });
    return decision;
  }

  /** A new active key: a fresh healthy row, first probe somewhere in the interval; any incident closes. */
  async onActivated(event: EventEnvelope<'key.activated'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx) => {
      const connection = await Health.connection(tx, event.tenantId);
      if (connection?.status !== 'active' || connection.activeCredentialId !== event.data.credentialId) return;
      await this.adoptActiveCredential(tx, event);
    });
  }

  /** An invalidated credential is not probed any more. */
  async onInvalidated(event: EventEnvelope<'key.invalidated'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx) => {
      await tx.query(`UPDATE connection_health SET next_probe_at = NULL, updated_at = now() WHERE tenant_id = $1 AND credential_id = $2`, [
        event.tenantId,
        event.data.credentialId,
      ]);
    });
  }

  async onUninstalled(event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx) => {
      const connection = await Health.connection(tx, event.tenantId);
      if (connection?.status !== 'uninstalled') return; // reinstalled meanwhile: keep probing the new key
      await tx.query(`UPDATE connection_health SET next_probe_at = NULL, updated_at = now() WHERE tenant_id = $1`, [event.tenantId]);
    });
  }

  /**
   * A compromised key: one reconnection alert per compromised credential, whatever number of
   * disable events arrive — and one for each key compromised in turn, even when the monitor
   * never saw the later key active (the row then still describes the earlier one).
   */
  async onDisabled(event: EventEnvelope<'connection.disabled'>): Promise<'alerted' | 'duplicate' | 'stale'> {
    const outcome = await Inbox.runOnce(this.dataSource, MONITOR_CONSUMER, event, async (tx): Promise<'alerted' | 'duplicate' | 'stale'> => {
      const connection = await Health.connection(tx, event.tenantId);
      if (connection?.status !== 'disabled') return 'stale'; // a new key was activated meanwhile
      const [row] = (await tx.query(
        `SELECT credential_id AS "credentialId", reason, incident_id AS "incidentId", alerted_incident_id AS "alertedIncidentId"
         FROM connection_health WHERE tenant_id = $1 FOR UPDATE`,
        [event.tenantId],
      )) as { credentialId: string; reason: string | null; incidentId: string | null; alertedIncidentId: string | null }[];
      // Rotation names the compromised credential on the connection it disabled.
      const credentialId =
        connection.compromisedCredentialId ?? connection.activeCredentialId ?? (await this.lastCompromisedCredential(tx, event.tenantId)) ?? row?.credentialId ?? null;
      const alreadyAlerted = row?.reason === 'key_compromised' && row.incidentId !== null && row.alertedIncidentId === row.incidentId;
      if (alreadyAlerted && (credentialId === null || row.credentialId === credentialId)) return 'duplicate';

      const incidentId = randomUUID();
      let since = new Date();
      if (row) {
        const [updated] = Health.rowsOf<{ since: Date }>(
          await tx.query(
            `UPDATE connection_health SET credential_id = coalesce($3::uuid, credential_id), state = 'reconnect_required', reason = 'key_compromised',
               missing_scopes = NULL, since = now(), auth_failures = 0, last_auth_failure_at = NULL,
               incident_id = $2, alerted_incident_id = $2, revalidate_requested_at = NULL, next_probe_at = NULL, updated_at = now()
             WHERE tenant_id = $1 RETURNING since`,
            [event.tenantId, incidentId, credentialId],
          ),
        );
        since = updated.since;
      } else if (credentialId) {
        await tx.query(
          `INSERT INTO connection_health (tenant_id, credential_id, state, reason, since, auth_failures, incident_id, alerted_incident_id, updated_at)
           VALUES ($1, $2, 'reconnect_required', 'key_compromised', $3, 0, $4, $4, now())`,
          [event.tenantId, credentialId, since, incidentId],
        );
      }
      const last4 = credentialId ? await Health.last4(tx, credentialId) : '????';
      await Outbox.stage(
        tx,
        createEvent(
          'alert.reconnection_required',
          causedBy(event, MONITOR_PRODUCER),
          reconnectionAlert({ reason: 'key_compromised', companyId: connection.companyId, last4, since }),
        ),
      );
      await AuditLog.append(tx, {
        tenantId: event.tenantId,
        actor: MONITOR_ACTOR,
        action: 'alert.reconnection_required',
        credentialId,
        last4,
        correlationId: event.correlationId,
        details: { reason: 'key_compromised' },
      });
      return 'alerted';
    });
    const decision = outcome.duplicate ? 'duplicate' : outcome.result;
    if (decision === 'alerted') this.metrics.alerts.inc({ kind: 'reconnection_required', reason: 'key_compromised' });
    return decision;
  }

  /**
   * Locks the tenant's health row; when the active credential changed (activation not seen yet,
   * or state set up by rotation before the monitor ran) the row is first started afresh for it.
   */
  private async lockCurrent(tx: EntityManager, cause: EventEnvelope): Promise<LockedHealth | undefined> {
    const health = await Health.lock(tx, cause.tenantId, this.windowSeconds);
    if (health && !(health.connectionStatus === 'active' && health.credentialId !== health.activeCredentialId)) return health;
    if (!health) {
      const connection = await Health.connection(tx, cause.tenantId);
      if (connection?.status !== 'active' || !connection.activeCredentialId) return undefined;
    }
    await this.adoptActiveCredential(tx, cause);
    return Health.lock(tx, cause.tenantId, this.windowSeconds);
  }

  private async adoptActiveCredential(tx: EntityManager, cause: EventEnvelope): Promise<void> {
    const { reset, previousState } = await Health.resetToActiveCredential(tx, cause.tenantId, this.intervalSeconds);
    if (reset && previousState && previousState !== 'healthy') {
      // The customer replaced the failing key: whoever showed "degraded" can stop.
      await Outbox.stage(
        tx,
        createEvent('connection.recovered', causedBy(cause, MONITOR_PRODUCER), { reason: 'key_replaced', since: new Date().toISOString() }),
      );
      this.metrics.transitions.inc({ state: 'healthy', reason: 'key_replaced' });
    }
  }

  private async degrade(tx: EntityManager, cause: EventEnvelope<'auth.failed'>, health: LockedHealth, reason: string, failures: number): Promise<void> {
    const [row] = Health.rowsOf<{ since: Date }>(
      await tx.query(
        `UPDATE connection_health SET state = 'degraded', reason = $2, since = now(), incident_id = $3,
           revalidate_requested_at = now(), next_probe_at = now() + make_interval(secs => $4), updated_at = now()
         WHERE tenant_id = $1 RETURNING since`,
        [cause.tenantId, reason, randomUUID(), this.timings.revalidationTimeoutMs / 1000],
      ),
    );
    const origin = causedBy(cause, MONITOR_PRODUCER);
    await Outbox.stage(
      tx,
      createEvent('connection.degraded', origin, { reason, since: row.since.toISOString() }),
      createEvent('key.revalidate', origin, { credentialId: health.credentialId, reason: 'auth_failures' }),
    );
    await AuditLog.append(tx, {
      tenantId: cause.tenantId,
      actor: MONITOR_ACTOR,
      action: 'connection.degraded',
      credentialId: health.credentialId,
      last4: await Health.last4(tx, health.credentialId),
      correlationId: cause.correlationId,
      details: { reason, failures, windowSeconds: this.windowSeconds },
    });
    this.logger.info('Connection degraded; asked the validator to revalidate the key', { tenantId: cause.tenantId, reason, failures });
  }

  /** A key.revalidated the validator has no record of: counted, audited, and otherwise ignored. */
  private async unconfirmed(tx: EntityManager, event: EventEnvelope<'key.revalidated'>): Promise<RevalidationDecision> {
    this.metrics.unconfirmed.inc({ type: event.type });
    this.logger.warn("Event ignored: the validator has no record of it", { type: event.type, eventId: event.id, tenantId: event.tenantId, producer: event.producer });
    await AuditLog.append(tx, {
      tenantId: event.tenantId,
      actor: MONITOR_ACTOR,
      action: 'event.unconfirmed',
      credentialId: event.data.credentialId,
      last4: null,
      correlationId: event.correlationId,
      details: { eventId: event.id, eventType: event.type, producer: event.producer },
    });
    return 'unconfirmed';
  }

  private async markHealthy(tx: EntityManager, cause: EventEnvelope<'key.revalidated'>, health: LockedHealth): Promise<RevalidationDecision> {
    const wasDown = health.state !== 'healthy';
    const [row] = Health.rowsOf<{ since: Date }>(
      await tx.query(
        `UPDATE connection_health SET state = 'healthy', reason = NULL, missing_scopes = NULL,
           since = CASE WHEN state = 'healthy' THEN since ELSE now() END, incident_id = NULL, auth_failures = 0,
           revalidate_requested_at = NULL, last_validated_at = now(),
           next_probe_at = CASE WHEN state = 'healthy' AND reason IS NULL AND next_probe_at > now() THEN next_probe_at
                                ELSE now() + make_interval(secs => $2) END,
           updated_at = now()
         WHERE tenant_id = $1 RETURNING since`,
        [cause.tenantId, this.intervalSeconds],
      ),
    );
    if (!wasDown) return 'confirmed_healthy';
    await Outbox.stage(tx, createEvent('connection.recovered', causedBy(cause, MONITOR_PRODUCER), { reason: 'revalidated', since: row.since.toISOString() }));
    await AuditLog.append(tx, {
      tenantId: cause.tenantId,
      actor: MONITOR_ACTOR,
      action: 'connection.recovered',
      credentialId: health.credentialId,
      last4: await Health.last4(tx, health.credentialId),
      correlationId: cause.correlationId,
      details: { previousState: health.state, reason: 'revalidated' },
    });
    this.logger.info('Connection recovered: Pleo still accepts the key', { tenantId: cause.tenantId, previousState: health.state });
    return 'recovered';
  }

  private async requireReconnect(
    tx: EntityManager,
    cause: EventEnvelope<'key.revalidated'>,
    health: LockedHealth,
    reason: Exclude<ReconnectReason, 'key_compromised'>,
    missingScopes: string[] | null,
  ): Promise<RevalidationDecision> {
    const alreadyAlerted = health.incidentId !== null && health.alertedIncidentId === health.incidentId;
    const incidentId = health.incidentId ?? randomUUID();
    const [row] = Health.rowsOf<{ since: Date }>(
      await tx.query(
        `UPDATE connection_health SET state = 'reconnect_required', reason = $2, missing_scopes = $3,
           since = CASE WHEN state = 'reconnect_required' THEN since ELSE now() END,
           incident_id = $4, alerted_incident_id = $4, revalidate_requested_at = NULL,
           next_probe_at = now() + make_interval(secs => $5), updated_at = now()
         WHERE tenant_id = $1 RETURNING since`,
        [cause.tenantId, reason, missingScopes, incidentId, this.intervalSeconds],
      ),
    );
    // One alert per incident, however many failures or revalidations follow.
    if (alreadyAlerted) return 'already_reconnect_required';
    const last4 = await Health.last4(tx, health.credentialId);
    await Outbox.stage(
      tx,
      createEvent(
        'alert.reconnection_required',
        causedBy(cause, MONITOR_PRODUCER),
        reconnectionAlert({ reason, companyId: health.companyId, last4, since: row.since, missingScopes }),
      ),
    );
    await AuditLog.append(tx, {
      tenantId: cause.tenantId,
      actor: MONITOR_ACTOR,
      action: 'connection.reconnect_required',
      credentialId: health.credentialId,
      last4,
      correlationId: cause.correlationId,
      details: { reason, previousState: health.state, ...(missingScopes?.length ? { missingScopes } : {}) },
    });
    this.logger.warn('Pleo no longer accepts the key; asked the customer to reconnect', { tenantId: cause.tenantId, reason, missingScopes });
    return 'reconnect_required';
  }

  /**
   * Pleo did not answer, or rate-limited this credential: no verdict. The state stays; the
   * scheduler asks again with a growing delay. Only Pleo's own failures count towards a provider
   * incident: one customer's 429s say nothing about the other tenants.
   */
  private async retryLater(
    tx: EntityManager,
    cause: EventEnvelope<'key.revalidated'>,
    health: LockedHealth,
    reason: 'pleo_unreachable' | 'pleo_rate_limited',
  ): Promise<RevalidationDecision> {
    if (health.state === 'reconnect_required') return 'retry_later';
    const minSeconds = this.timings.unreachableRetryMinMs / 1000;
    const maxSeconds = this.timings.unreachableRetryMaxMs / 1000;
    await tx.query(
      `UPDATE connection_health SET reason = $4, revalidate_requested_at = NULL,
         next_probe_at = now() + least(greatest(now() - since, make_interval(secs => $2)), make_interval(secs => $3)) * (0.8 + random() * 0.4),
         updated_at = now()
       WHERE tenant_id = $1`,
      [cause.tenantId, minSeconds, maxSeconds, reason],
    );
    if (reason === 'pleo_rate_limited') return 'retry_later';
    const incident = await this.provider.openIfWidespread(tx, cause);
    if (incident?.opened) this.metrics.providerIncidents.inc({ event: 'opened' });
    return 'retry_later';
  }

  private async lastCompromisedCredential(tx: EntityManager, tenantId: string): Promise<string | null> {
    const [row] = (await tx.query(
      `SELECT id FROM credentials WHERE tenant_id = $1 AND invalidated_reason = 'compromised' ORDER BY invalidated_at DESC NULLS LAST LIMIT 1`,
      [tenantId],
    )) as { id: string }[];
    return row?.id ?? null;
  }
}

export type { HealthState };
