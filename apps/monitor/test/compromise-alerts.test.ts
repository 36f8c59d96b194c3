import { randomUUID } from 'node:crypto';
import { createEvent } from '@keyward/contracts';
import { compromiseAsRotation, createTestDatabase, dropTopology, EventTap, eventually, publishExternal, TestDatabase, testPrefix } from '@keyward/testing';
import { Webhook } from 'standardwebhooks';
import { health, MonitorInstance, SeededConnection, seedActiveConnection, sleep, startMonitor, startWebhookReceiver, WEBHOOK_SECRET } from './monitor-harness';

const OTHER_SECRET = `whsec_${Buffer.from('another-webhook-secret-0123456789ab').toString('base64')}`;

describe('monitor: a compromised key → one reconnection alert per key, delivered to a signed webhook', () => {
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

  it('alerts once on a compromise and delivers the alert to a signed webhook, retrying a failing receiver', async () => {
    const connection = await seedActiveConnection(db);
    await compromiseAsRotation(db, { tenantId: connection.tenantId, credentialId: connection.credentialId });
    const disabled = () =>
      createEvent('connection.disabled', { tenantId: connection.tenantId, correlationId: `c-${randomUUID()}`, producer: 'rotation' }, { reason: 'key_compromised', since: new Date().toISOString() });
    await publishExternal(prefix, disabled());
    const alert = await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === connection.tenantId);
    expect(alert.data).toMatchObject({ reason: 'key_compromised', last4: connection.last4, action: expect.stringMatching(/replacement key/) });
    await publishExternal(prefix, disabled()); // a second report of the same compromise

    const deliveries = await eventually(
      async () => {
        const rows = await db.query<{ attempt: number; status: string; response_status: number; kind: string }>(
          `SELECT attempt, status, response_status, kind FROM alert_deliveries WHERE alert_event_id = $1 ORDER BY attempt`,
          [alert.id],
        );
        return rows.length === 3 ? rows : undefined;
      },
      20_000,
      'three delivery attempts',
    );
    expect(deliveries).toEqual([
      { attempt: 1, status: 'failed', response_status: 500, kind: 'alert.reconnection_required' },
      { attempt: 2, status: 'failed', response_status: 500, kind: 'alert.reconnection_required' },
      { attempt: 3, status: 'delivered', response_status: 200, kind: 'alert.reconnection_required' },
    ]);
    const calls = receiver.calls.filter((c) => c.eventId === alert.id);
    expect(calls.map((c) => c.attempt)).toEqual(['1', '2', '3']);
    for (const call of calls) {
      // What a receiver does with the Standard Webhooks library: the event id is the webhook-id.
      expect(call.headers['webhook-id']).toBe(alert.id);
      expect(new Webhook(WEBHOOK_SECRET).verify(call.body, call.headers)).toEqual(alert);
      expect(() => new Webhook(OTHER_SECRET).verify(call.body, call.headers)).toThrow();
      expect(() => new Webhook(WEBHOOK_SECRET).verify(call.body.replace(connection.last4, 'zzzz'), call.headers)).toThrow();
    }
    const body = JSON.parse(calls[2].body);
    expect(body).toEqual(alert);
    expect(Object.keys(body.data).sort()).toEqual(['action', 'companyId', 'last4', 'reason', 'since']);

    await sleep(800);
    expect(tap.ofType('alert.reconnection_required', connection.tenantId)).toHaveLength(1);
    expect(receiver.calls.filter((c) => c.eventId === alert.id)).toHaveLength(3);
  });

  it('alerts again when the replacement key is compromised too, naming that key, though its activation was seen only after it was disabled', async () => {
    const a = await seedActiveConnection(db);
    const tenantId = a.tenantId;
    const disableAsRotation = (c: SeededConnection) => compromiseAsRotation(db, { tenantId, credentialId: c.credentialId });
    const origin = () => ({ tenantId, correlationId: `c-${randomUUID()}`, producer: 'rotation' });
    const handled = (eventId: string) =>
      eventually(async () => (await db.query(`SELECT 1 FROM inbox WHERE consumer = 'monitor' AND event_id = $1`, [eventId])).length > 0, 15_000, 'monitor handled it');

    await disableAsRotation(a);
    await publishExternal(prefix, createEvent('connection.disabled', origin(), { reason: 'key_compromised', since: new Date().toISOString() }));
    const first = await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === tenantId);
    expect(first.data.last4).toBe(a.last4);

    // The customer pastes B; B is activated and compromised before the monitor sees the activation.
    const b = await seedActiveConnection(db, { tenantId, companyId: a.companyId, credentialId: randomUUID(), last4: 'b2b2' });
    await disableAsRotation(b);
    const activated = createEvent('key.activated', origin(), { credentialId: b.credentialId, companyId: a.companyId });
    await publishExternal(prefix, activated);
    await handled(activated.id);
    await publishExternal(prefix, createEvent('connection.disabled', origin(), { reason: 'key_compromised', since: new Date().toISOString() }));

    const alerts = await eventually(
      () => {
        const found = tap.ofType('alert.reconnection_required', tenantId);
        return found.length >= 2 ? found : undefined;
      },
      15_000,
      'a second reconnection alert',
    );
    expect(alerts.map((e) => e.data.last4)).toEqual([a.last4, 'b2b2']);
    expect(await health(db, tenantId)).toMatchObject({ credential_id: b.credentialId, state: 'reconnect_required', reason: 'key_compromised' });
  });
});
