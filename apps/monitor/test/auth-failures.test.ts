import { randomUUID } from 'node:crypto';
import { createEvent } from '@keyward/contracts';
import { createTestDatabase, dropTopology, EventTap, eventually, publishExternal, TestDatabase, testPrefix, uninstallAsRotation } from '@keyward/testing';
import {
  authFailed,
  failureRows,
  health,
  MonitorInstance,
  publishRevalidated,
  revalidated,
  rotateTo,
  seedActiveConnection,
  sleep,
  startMonitor,
  startWebhookReceiver,
  WEBHOOK_SECRET,
} from './monitor-harness';

describe('monitor: auth failures → degraded → revalidation → recovered or one reconnection alert', () => {
  let db: TestDatabase;
  let prefix: string;
  let monitor: MonitorInstance;
  let tap: EventTap;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testPrefix();
    receiver = await startWebhookReceiver();
    tap = await new EventTap(prefix).start();
    monitor = await startMonitor(
      db,
      prefix,
      // Per-tenant behaviour here; provider incidents (many tenants at once) have their own test.
      { KEYWARD_ALERT_WEBHOOK_URL: receiver.url, KEYWARD_ALERT_WEBHOOK_SECRET: WEBHOOK_SECRET, KEYWARD_PROVIDER_INCIDENT_MIN_TENANTS: '1000' },
      { webhookBaseBackoffMs: 200, webhookMaxBackoffMs: 1_000 },
    );
  });

  afterAll(async () => {
    await monitor?.close();
    await tap?.stop();
    await dropTopology(prefix);
    await db?.drop();
    await new Promise((r) => receiver?.server.close(r));
  });

  const failuresRecorded = (tenantId: string, n: number) => eventually(async () => (await failureRows(db, tenantId)).length === n, 15_000, `${n} failures recorded`);

  async function fail(tenantId: string, times: number, status: 401 | 403 = 401, credentialId?: string): Promise<void> {
    const before = (await failureRows(db, tenantId)).length;
    for (let i = 0; i < times; i++) await publishExternal(prefix, authFailed(tenantId, status, credentialId));
    await failuresRecorded(tenantId, before + times);
  }

  it('degrades at the third 401 within the window, asks for revalidation once, and recovers when the key still works', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 2);
    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'healthy', auth_failures: 2 });
    expect(tap.ofType('connection.degraded', connection.tenantId)).toHaveLength(0);

    await fail(connection.tenantId, 1);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    expect(request.data).toEqual({ credentialId: connection.credentialId, reason: 'auth_failures' });
    await tap.waitFor('connection.degraded', (e) => e.tenantId === connection.tenantId);
    const degraded = await health(db, connection.tenantId);
    expect(degraded).toMatchObject({ state: 'degraded', auth_failures: 3, reason: 'auth_failures' });
    expect(degraded.last_auth_failure_at).not.toBeNull();

    // More failures of the same incident: counted, not announced again.
    await fail(connection.tenantId, 3);
    await sleep(300);
    expect(tap.ofType('connection.degraded', connection.tenantId)).toHaveLength(1);
    expect(tap.ofType('key.revalidate', connection.tenantId)).toHaveLength(1);
    expect((await health(db, connection.tenantId)).auth_failures).toBe(6);

    await publishRevalidated(db, prefix, revalidated(request, 'valid'));
    const recovered = await tap.waitFor('connection.recovered', (e) => e.tenantId === connection.tenantId);
    expect(recovered.causationId).toBeDefined();
    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'healthy', auth_failures: 0, reason: null });
    expect((await health(db, connection.tenantId)).last_validated_at!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(tap.ofType('alert.reconnection_required', connection.tenantId)).toHaveLength(0);
    const audit = await db.query<{ action: string; actor: string }>(`SELECT action, actor FROM audit_log WHERE tenant_id = $1 ORDER BY seq`, [connection.tenantId]);
    expect(audit).toEqual([
      { action: 'connection.degraded', actor: 'service:monitor' },
      { action: 'connection.recovered', actor: 'service:monitor' },
    ]);
  });

  it('a key.revalidated the validator never recorded changes nothing: no reconnect_required, no alert; it is counted and audited', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 3);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    const forged = revalidated(request, 'invalid', []);
    await publishExternal(prefix, forged);
    await eventually(async () => (await db.query(`SELECT 1 FROM inbox WHERE consumer = 'monitor' AND event_id = $1`, [forged.id])).length === 1, 15_000, 'forged event handled');

    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'degraded' });
    await sleep(300);
    expect(tap.ofType('alert.reconnection_required', connection.tenantId)).toHaveLength(0);
    const audit = await db.query<{ action: string }>(`SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY seq`, [connection.tenantId]);
    expect(audit.map((a) => a.action)).toEqual(['connection.degraded', 'event.unconfirmed']);
    const text = await monitor.app.get((await import('@keyward/observability')).Metrics).registry.metrics();
    expect(text).toMatch(/keyward_events_unconfirmed_total\{type="key.revalidated"[^}]*\} 1/);

    // The validator's recorded answer for the same request still counts.
    await publishRevalidated(db, prefix, revalidated(request, 'valid'));
    await tap.waitFor('connection.recovered', (e) => e.tenantId === connection.tenantId);
  });

  it('moves to reconnect_required with exactly one alert when Pleo says the key is dead, however many failures follow', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 3);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    await publishRevalidated(db, prefix, revalidated(request, 'invalid', []));
    const alert = await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === connection.tenantId);
    expect(alert.data).toMatchObject({
      reason: 'invalid_key',
      companyId: connection.companyId,
      last4: connection.last4,
      action: expect.stringMatching(/new key/i),
    });
    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'reconnect_required', reason: 'invalid_key' });

    // The integration keeps calling with the dead key; the validator answers again: no second alert.
    await fail(connection.tenantId, 5);
    await publishRevalidated(db, prefix, revalidated(request, 'invalid', []));
    await eventually(async () => (await db.query(`SELECT 1 FROM inbox WHERE consumer = 'monitor' AND event_type = 'key.revalidated'`)).length >= 3, 10_000, 'second result handled');
    await sleep(500);
    expect(tap.ofType('alert.reconnection_required', connection.tenantId)).toHaveLength(1);
    expect(tap.ofType('connection.degraded', connection.tenantId)).toHaveLength(1);
    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'reconnect_required', auth_failures: 8 });
  });

  it('names the missing scopes when the key lost permissions (the first 403 is enough to check)', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 1, 403, connection.credentialId);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    expect((await tap.waitFor('connection.degraded', (e) => e.tenantId === connection.tenantId)).data.reason).toBe('forbidden');
    await publishRevalidated(db, prefix, revalidated(request, 'insufficient_scopes', ['accounts:read']));
    const alert = await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === connection.tenantId);
    expect(alert.data).toMatchObject({ reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'], last4: connection.last4 });
    expect(alert.data.action).toMatch(/permissions/);
    expect(await health(db, connection.tenantId)).toMatchObject({ state: 'reconnect_required', missing_scopes: ['export-jobs:write'] });
  });

  it('records failures of a superseded credential but never degrades the new one; failures naming no credential count against the active one', async () => {
    const old = await seedActiveConnection(db);
    const current = await rotateTo(db, old);
    await fail(old.tenantId, 6, 401, old.credentialId);
    await fail(old.tenantId, 2, 403, old.credentialId);
    const rows = await failureRows(db, old.tenantId);
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => r.counts_against_active === false)).toBe(true);
    expect(await health(db, old.tenantId)).toMatchObject({ credential_id: current.credentialId, state: 'healthy', auth_failures: 0 });
    expect(tap.ofType('key.revalidate', old.tenantId)).toHaveLength(0);

    await fail(old.tenantId, 3); // no credentialId: these are the active key's
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === old.tenantId);
    expect(request.data.credentialId).toBe(current.credentialId);

    // A late result about the old credential changes nothing.
    await publishRevalidated(db, prefix, revalidated({ ...request, data: { ...request.data, credentialId: old.credentialId } }, 'invalid', []));
    await sleep(500);
    expect(tap.ofType('alert.reconnection_required', old.tenantId)).toHaveLength(0);
    expect((await health(db, old.tenantId)).state).toBe('degraded');
  });

  it('keeps no query string, userinfo or free text after the name from a reported failure', async () => {
    const connection = await seedActiveConnection(db);
    const secret = `pleo_canary_${randomUUID()}`;
    const report = createEvent(
      'auth.failed',
      { tenantId: connection.tenantId, correlationId: `sync-${randomUUID()}`, producer: 'expense-sync' },
      {
        status: 401,
        source: `expense-sync key=${secret}`,
        endpoint: `https://${secret}:@external.pleo.io/v1/expenses?api_key=${secret}&page=2`,
        observedAt: new Date().toISOString(),
      },
    );
    await publishExternal(prefix, report);
    await failuresRecorded(connection.tenantId, 1);
    const rows = await db.query<{ source: string; endpoint: string }>(`SELECT source, endpoint FROM auth_failures WHERE tenant_id = $1`, [connection.tenantId]);
    expect(rows).toEqual([{ source: 'expense-sync', endpoint: 'https://external.pleo.io/v1/expenses' }]);
    expect(JSON.stringify(await db.query(`SELECT * FROM auth_failures`))).not.toContain(secret);
  });

  it('keeps a degraded connection degraded when Pleo is unreachable and asks again later', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 3);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    await publishRevalidated(db, prefix, revalidated(request, 'unreachable', []));
    await eventually(async () => (await health(db, connection.tenantId)).reason === 'pleo_unreachable', 10_000, 'unreachable noted');
    const row = await health(db, connection.tenantId);
    expect(row.state).toBe('degraded');
    expect(row.next_probe_at!.getTime()).toBeGreaterThan(Date.now());
    expect(tap.ofType('alert.reconnection_required', connection.tenantId)).toHaveLength(0);
  });

  it('starts a newly activated key healthy, closing the old incident, and stops probing an uninstalled connection', async () => {
    const connection = await seedActiveConnection(db);
    await fail(connection.tenantId, 3);
    const request = await tap.waitFor('key.revalidate', (e) => e.tenantId === connection.tenantId);
    await publishRevalidated(db, prefix, revalidated(request, 'invalid', []));
    await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === connection.tenantId);

    const replacement = await rotateTo(db, connection);
    await publishExternal(
      prefix,
      createEvent(
        'key.activated',
        { tenantId: connection.tenantId, correlationId: `c-${randomUUID()}`, producer: 'rotation' },
        {
          credentialId: replacement.credentialId,
          companyId: connection.companyId,
          previousCredentialId: connection.credentialId,
        },
      ),
    );
    const recovered = await tap.waitFor('connection.recovered', (e) => e.tenantId === connection.tenantId);
    expect(recovered.data.reason).toBe('key_replaced');
    const fresh = await health(db, connection.tenantId);
    expect(fresh).toMatchObject({ credential_id: replacement.credentialId, state: 'healthy', auth_failures: 0 });
    const interval = 24 * 3600_000;
    expect(fresh.next_probe_at!.getTime()).toBeGreaterThan(Date.now() - 5_000);
    expect(fresh.next_probe_at!.getTime()).toBeLessThanOrEqual(Date.now() + interval);

    await uninstallAsRotation(db, connection.tenantId);
    await publishExternal(
      prefix,
      createEvent('connection.uninstalled', { tenantId: connection.tenantId, correlationId: `c-${randomUUID()}`, producer: 'intake' }, { reason: 'uninstalled', since: new Date().toISOString() }),
    );
    await eventually(async () => (await health(db, connection.tenantId)).next_probe_at === null, 10_000, 'probing stopped');
  });

  it('exposes failures by status, connections by state, alerts by reason and probe lag', async () => {
    const text = await monitor.app.get((await import('@keyward/observability')).Metrics).registry.metrics();
    expect(text).toMatch(/keyward_monitor_auth_failures_total\{status="401",counted="true"/);
    expect(text).toMatch(/keyward_monitor_auth_failures_total\{status="401",counted="false"/);
    expect(text).toMatch(/keyward_monitor_connections\{state="reconnect_required",service="monitor"\} [1-9]/);
    expect(text).toMatch(/keyward_monitor_alerts_total\{kind="reconnection_required",reason="invalid_key"/);
    expect(text).toMatch(/keyward_monitor_probe_lag_seconds\{service="monitor"\} 0/);
    expect(text).not.toMatch(/tenant/i);
  });
});
