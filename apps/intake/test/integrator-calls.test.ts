import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { problem } from '@keyward/contracts';
import { eventually } from '@keyward/testing';
import { ALERT_DELIVERY_LIST } from '../alert-deliveries/alert-delivery.schema';
import { CONNECTION_CHECK } from '../connection-checks/connection-check.schema';
import { CONNECTION_LIST } from '../connections/connection-list.schema';
import { ConnectStack, startConnectStack } from './connect-stack';

/**
 * The integrator's calls beside the connect page, against real intake, validator, rotation and
 * monitor with the Pleo sandbox: "test now", who needs attention, and alert webhook deliveries
 * (Standard Webhooks, signed with the current and the previous secret during a rotation window).
 */
const CURRENT_SECRET = `whsec_${Buffer.from('current-alert-secret-0123456789abcdef').toString('base64')}`;
const PREVIOUS_SECRET = `whsec_${Buffer.from('previous-alert-secret-0123456789abcde').toString('base64')}`;

interface Delivery {
  body: string;
  headers: Record<string, string>;
}

describe('integrator calls', () => {
  let stack: ConnectStack;
  let receiver: Server;
  const received: Delivery[] = [];
  let accepting = false;
  let counter = 0;
  const tenant = () => `calls-${process.pid}-${Date.now().toString(36)}-${++counter}`;

  beforeAll(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(req.headers[h])]));
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers });
        res.statusCode = accepting ? 204 : 503;
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/keyward-alerts`;
    stack = await startConnectStack({
      monitor: true,
      intakeEnv: { KEYWARD_CONNECTION_CHECKS_PER_TENANT_PER_HOUR: '3' },
      monitorEnv: {
        KEYWARD_ALERT_WEBHOOK_URL: webhookUrl,
        KEYWARD_ALERT_WEBHOOK_SECRET: CURRENT_SECRET,
        KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET: PREVIOUS_SECRET,
        KEYWARD_ALERT_WEBHOOK_PREVIOUS_SECRET_UNTIL: new Date(Date.now() + 3600_000).toISOString(),
      },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  async function connected(companyId = 'c-calls'): Promise<{ tenantId: string; keyId: string }> {
    const tenantId = tenant();
    const key = stack.sandbox.state.issueKey({ companyId });
    const res = await stack.service('PUT', `/v1/tenants/${tenantId}/pleo/key`, { apiKey: key.apiKey }, { Prefer: 'wait=20' });
    expect(res.body.status).toBe('accepted');
    // The monitor has adopted the key once its health row exists.
    await eventually(async () => (await stack.db.query('SELECT 1 FROM connection_health WHERE tenant_id = $1', [tenantId])).length > 0, 15_000, 'health row');
    return { tenantId, keyId: key.id };
  }

  describe('POST …/pleo/connection/check', () => {
    it('with Prefer: wait answers the outcome; the monitor asked the validator (key.revalidate, reason manual)', async () => {
      const { tenantId } = await connected();
      const res = await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`, undefined, { Prefer: 'wait=20' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'completed', outcome: 'valid', error: null });
      expect(CONNECTION_CHECK.safeParse(res.body).error).toBeUndefined();
      const checkId = res.body.checkId as string;
      expect(res.headers.get('location')).toBe(`/v1/tenants/${tenantId}/pleo/connection/checks/${checkId}`);
      const requested = stack.tap.ofType('connection.check_requested', tenantId);
      expect(requested.map((e) => [e.id, e.producer])).toEqual([[checkId, 'intake']]);
      const revalidate = await stack.tap.waitFor('key.revalidate', (e) => e.tenantId === tenantId);
      expect(revalidate).toMatchObject({ producer: 'monitor', causationId: checkId, data: { reason: 'manual', checkId } });
    });

    it('a key Pleo no longer accepts: the check says so, and the connection follows to reconnect_required', async () => {
      const { tenantId, keyId } = await connected('c-revoked');
      stack.sandbox.state.revoke(keyId);
      const res = await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`, undefined, { Prefer: 'wait=20' });
      expect(res.body).toMatchObject({ status: 'completed', outcome: 'invalid', error: problem('reconnect_required') });
      await eventually(async () => (await stack.service('GET', `/v1/tenants/${tenantId}/pleo/connection`)).body.status === 'reconnect_required', 15_000, 'reconnect_required');
    });

    it('without Prefer answers 202 and the outcome is read at Location', async () => {
      const { tenantId } = await connected();
      const res = await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`);
      expect(res.status).toBe(202);
      expect(res.body.status).toBe('pending');
      const location = res.headers.get('location')!;
      const done = await eventually(
        async () => {
          const check = await stack.service('GET', location);
          return check.body.status === 'completed' ? check.body : undefined;
        },
        15_000,
        'the check to complete',
      );
      expect(done).toMatchObject({ checkId: res.body.checkId, outcome: 'valid' });
      expect((await stack.service('GET', `/v1/tenants/${tenantId}/pleo/connection/checks/00000000-0000-4000-8000-000000000000`)).body.error.code).toBe('check_not_found');
    });

    it('refuses a tenant without an active key, install sessions, and a fourth check within the hour', async () => {
      const lonely = tenant();
      const none = await stack.service('POST', `/v1/tenants/${lonely}/pleo/connection/check`);
      expect([none.status, none.body.error.code]).toEqual([409, 'connection_not_checkable']);

      const { tenantId } = await connected();
      const session = await stack.mintSession(tenantId);
      const asSession = await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`, undefined, { Authorization: `Bearer ${session.token}` });
      expect([asSession.status, asSession.body.error.code]).toEqual([403, 'forbidden']);

      for (let i = 0; i < 3; i++) expect((await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`)).status).toBe(202);
      const limited = await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`);
      expect([limited.status, limited.body.error.code]).toEqual([429, 'check_rate_limited']);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    });
  });

  describe('GET /v1/connections', () => {
    it('lists tenants by state with since and the last error, as GET …/connection shows each, page by page', async () => {
      const healthy = await connected('c-list');
      const broken = await connected('c-list');
      stack.sandbox.state.revoke(broken.keyId);
      await stack.service('POST', `/v1/tenants/${broken.tenantId}/pleo/connection/check`, undefined, { Prefer: 'wait=20' });
      await eventually(async () => (await stack.service('GET', `/v1/tenants/${broken.tenantId}/pleo/connection`)).body.status === 'reconnect_required', 15_000, 'reconnect_required');
      const rejected = tenant();
      await stack.service('PUT', `/v1/tenants/${rejected}/pleo/key`, { apiKey: stack.sandbox.state.issueKey({ scopes: ['accounts:read'] }).apiKey }, { Prefer: 'wait=20' });

      // Every tenant, one per page: the list's state is the state GET …/connection answers.
      const seen = new Map<string, { status: string; since: string | null; lastError: { code: string } | null }>();
      let cursor: string | null = null;
      do {
        const page: { status: number; body: any } = await stack.service('GET', `/v1/connections?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.connections.length).toBeLessThanOrEqual(1);
        expect(CONNECTION_LIST.safeParse(page.body).error).toBeUndefined();
        for (const item of page.body.connections) seen.set(item.tenantId, item);
        cursor = page.body.nextCursor;
      } while (cursor);
      for (const tenantId of [healthy.tenantId, broken.tenantId, rejected]) {
        const single = (await stack.service('GET', `/v1/tenants/${tenantId}/pleo/connection`)).body;
        expect(seen.get(tenantId)).toMatchObject({ status: single.status, lastError: single.error });
      }
      expect(seen.get(healthy.tenantId)).toMatchObject({ status: 'active', lastError: null });
      expect(seen.get(broken.tenantId)).toMatchObject({ status: 'reconnect_required', lastError: { code: 'reconnect_required' } });
      expect(seen.get(broken.tenantId)!.since).toEqual(expect.any(String));
      expect(seen.get(rejected)).toMatchObject({ status: 'not_connected', lastError: { code: 'insufficient_scopes' } });

      const attention = await stack.service('GET', '/v1/connections?status=degraded,reconnect_required&limit=200');
      const ids = attention.body.connections.map((c: { tenantId: string }) => c.tenantId);
      expect(ids).toContain(broken.tenantId);
      expect(ids).not.toContain(healthy.tenantId);
      expect(attention.body.connections.every((c: { status: string }) => ['degraded', 'reconnect_required'].includes(c.status))).toBe(true);
    });

    it('refuses unknown states, foreign cursors and install sessions', async () => {
      expect((await stack.service('GET', '/v1/connections?status=happy')).body.error.code).toBe('invalid_query');
      expect((await stack.service('GET', '/v1/connections?cursor=!!')).body.error.code).toBe('invalid_cursor');
      expect((await stack.service('GET', '/v1/connections?limit=0')).body.error.code).toBe('invalid_query');
      const session = await stack.mintSession(tenant());
      const res = await stack.service('GET', '/v1/connections', undefined, { Authorization: `Bearer ${session.token}` });
      expect(res.status).toBe(403);
    });
  });

  describe('alert deliveries', () => {
    it('lists a failed alert, redelivers it on request with the same webhook-id, signed with both secrets during the rotation window', async () => {
      accepting = false;
      const { tenantId, keyId } = await connected('c-alert');
      stack.sandbox.state.revoke(keyId);
      await stack.service('POST', `/v1/tenants/${tenantId}/pleo/connection/check`, undefined, { Prefer: 'wait=20' });
      const alert = await stack.tap.waitFor('alert.reconnection_required', (e) => e.tenantId === tenantId, 20_000);

      const failed = await eventually(
        async () => {
          const res = await stack.service('GET', `/v1/alerts/deliveries?status=failed&tenantId=${tenantId}`);
          expect(ALERT_DELIVERY_LIST.safeParse(res.body).error).toBeUndefined();
          const row = res.body.deliveries.find((d: { id: string; attempts: number }) => d.id === alert.id && d.attempts === 2);
          return row;
        },
        20_000,
        'two failed attempts listed',
      );
      expect(failed).toMatchObject({ type: 'alert.reconnection_required', tenantId, status: 'failed', lastResponseStatus: 503, lastError: 'HTTP 503' });

      accepting = true;
      const redeliver = await stack.service('POST', `/v1/alerts/deliveries/${alert.id}/redeliver`);
      expect(redeliver.status).toBe(202);
      expect(redeliver.body.status).toBe('redelivering');
      const delivered = await eventually(
        async () => {
          const res = await stack.service('GET', `/v1/alerts/deliveries?status=delivered&tenantId=${tenantId}`);
          return res.body.deliveries.find((d: { id: string }) => d.id === alert.id);
        },
        20_000,
        'the redelivery',
      );
      expect(delivered.attempts).toBe(3);

      const attempts = received.filter((d) => d.headers['webhook-id'] === alert.id);
      expect(attempts).toHaveLength(3);
      for (const attempt of attempts) {
        expect(attempt.headers['webhook-signature'].split(' ')).toHaveLength(2);
        expect(new Webhook(CURRENT_SECRET).verify(attempt.body, attempt.headers)).toEqual(JSON.parse(JSON.stringify(alert)));
        expect(new Webhook(PREVIOUS_SECRET).verify(attempt.body, attempt.headers)).toEqual(JSON.parse(JSON.stringify(alert)));
      }

      expect((await stack.service('POST', '/v1/alerts/deliveries/00000000-0000-4000-8000-000000000000/redeliver')).body.error.code).toBe('alert_not_found');
      expect((await stack.service('GET', '/v1/alerts/deliveries?status=lost')).body.error.code).toBe('invalid_query');
    });
  });
});
