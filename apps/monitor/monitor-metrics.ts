import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { Metrics } from '@keyward/observability';
import { HEALTH_STATES } from './health-decisions';

/** The monitor's Prometheus series. Labels are states, statuses and reasons: never tenant ids. */
@Injectable()
export class MonitorMetrics {
  readonly authFailures: Counter<string>;
  readonly alerts: Counter<string>;
  readonly transitions: Counter<string>;
  readonly probes: Counter<string>;
  readonly webhookAttempts: Counter<string>;
  readonly providerIncidents: Counter<string>;
  readonly unconfirmed: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics, @Inject(DataSource) dataSource: DataSource, @Inject(KEYWARD_CONFIG) config: KeywardConfig) {
    this.authFailures = metrics.counter('keyward_monitor_auth_failures_total', 'auth.failed events seen, by HTTP status and whether they counted against the active credential', ['status', 'counted']);
    this.alerts = metrics.counter('keyward_monitor_alerts_total', 'Alerts published, by kind and reason', ['kind', 'reason']);
    this.transitions = metrics.counter('keyward_monitor_health_transitions_total', 'Connection health changes, by new state and reason', ['state', 'reason']);
    this.probes = metrics.counter('keyward_monitor_revalidations_requested_total', 'key.revalidate published, by reason', ['reason']);
    this.webhookAttempts = metrics.counter('keyward_monitor_webhook_attempts_total', 'Alert webhook delivery attempts, by outcome', ['outcome']);
    this.providerIncidents = metrics.counter('keyward_monitor_provider_incidents_total', 'Provider incidents opened and closed', ['event']);
    this.unconfirmed = metrics.counter('keyward_events_unconfirmed_total', "Events ignored because their owner's table has no record of them (forged or misrouted)", ['type']);

    const gaugeQuery = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => (await dataSource.query(sql, params).catch(() => [])) as T[];
    const byState = metrics.gauge('keyward_monitor_connections', 'Active connections by health state of the active credential', ['state'], async () => {
      const rows = await gaugeQuery<{ state: string; n: number }>(
        `SELECT coalesce(h.state, 'unmonitored') AS state, count(*)::int AS n
         FROM connections c LEFT JOIN connection_health h ON h.tenant_id = c.tenant_id AND h.credential_id = c.active_credential_id
         WHERE c.status = 'active' GROUP BY 1`,
      );
      byState.reset();
      for (const state of [...HEALTH_STATES, 'unmonitored']) byState.set({ state }, rows.find((r) => r.state === state)?.n ?? 0);
    });
    const lag = metrics.gauge('keyward_monitor_probe_lag_seconds', 'How late the oldest due probe is (0 when none is due)', [], async () => {
      const [row] = await gaugeQuery<{ lag: number }>(
        `SELECT coalesce(extract(epoch FROM now() - min(h.next_probe_at)), 0)::float AS lag
         FROM connection_health h JOIN connections c ON c.tenant_id = h.tenant_id AND c.active_credential_id = h.credential_id AND c.status = 'active'
         WHERE h.next_probe_at <= now()`,
      );
      lag.set(Math.max(0, Number(row?.lag ?? 0)));
    });
    const openIncident = metrics.gauge('keyward_monitor_provider_incident_open', '1 while a Pleo-side incident is open', [], async () => {
      const rows = await gaugeQuery('SELECT 1 FROM provider_incidents WHERE closed_at IS NULL');
      openIncident.set(rows.length > 0 ? 1 : 0);
    });
    const pendingAlerts = metrics.gauge('keyward_monitor_webhook_pending', 'Alerts not yet delivered to the webhook (when one is configured)', [], async () => {
      if (!config.monitor.alertWebhookUrl) return pendingAlerts.set(0);
      const [row] = await gaugeQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox o
         WHERE o.event_type = ANY($1) AND o.created_at > now() - interval '6 hours'
           AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_event_id = o.id AND d.status = 'delivered')`,
        [ALERT_EVENT_TYPES],
      );
      pendingAlerts.set(row?.n ?? 0);
    });
  }
}

/** Events delivered to the alert webhook besides the event bus. */
export const ALERT_EVENT_TYPES = ['alert.reconnection_required', 'provider.degraded', 'provider.recovered'];
