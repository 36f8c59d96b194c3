import { createServer } from 'node:net';
import { installSessionTokenHash } from '@keyward/service-auth';
import { credentialAsRotation, eventually, installSessionAsIntake, submissionAsIntake } from '@keyward/testing';
import { call, GatewayHarness, pleoPath, revokeAsIntake, seedTenant, startGatewayHarness } from './gateway-harness';

/**
 * The gateway as the integration uses it: a service token, a tenant, a Pleo path. Pleo is the
 * sandbox; Postgres and RabbitMQ are real. Every refusal is checked for its answer AND for the
 * call it must not have made.
 */
describe('credential gateway', () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGatewayHarness({ KEYWARD_GATEWAY_MAX_BODY_BYTES: String(64 * 1024), PLEO_TIMEOUT_MS: '1500', KEYWARD_AUTH_FAILURE_THRESHOLD: '3' });
  });

  afterAll(async () => {
    await h?.close();
  });

  const sandboxCalls = () => h.sandbox.state.recentRequests(2_000);

  it("forwards a call with the tenant's key as HTTP Basic, the query as sent, and none of the caller's credentials or hop-by-hop headers", async () => {
    const t = await seedTenant(h);
    h.sandbox.state.clearRequests();
    const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees?pageSize=10&after=abc'), {
      headers: {
        cookie: 'session=caller-cookie-value',
        connection: 'keep-alive, x-hop-secret',
        'x-hop-secret': 'must-not-pass',
        'proxy-authorization': 'Basic cHJveHk6cHJveHk=',
        'x-correlation-id': 'corr-forward-1',
        accept: 'application/json',
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.data[0]).toMatchObject({ companyId: t.key.companyId });
    expect(res.headers['x-correlation-id']).toBe('corr-forward-1');
    const [seen] = sandboxCalls();
    expect(seen).toMatchObject({ method: 'GET', path: '/v1/employees', authScheme: 'basic', credentialLast4: t.key.apiKey.slice(-4), basicPasswordNotEmpty: false, queryHadKeyLikeValue: false });
    expect(seen.headerNames).toEqual(expect.arrayContaining(['authorization', 'accept']));
    for (const name of ['cookie', 'x-hop-secret', 'proxy-authorization']) expect(seen.headerNames).not.toContain(name);
  });

  it("forwards a request body and answers Pleo's status and body", async () => {
    const t = await seedTenant(h);
    const res = await call(h, 'POST', pleoPath(t.tenantId, '/v1/export-jobs'), {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ format: 'csv', from: '2026-11-01' }),
    });
    expect(res.status).toBe(201);
    expect(res.body.data.parameters).toEqual({ format: 'csv', from: '2026-11-01' });
  });

  it('streams a large export back whole (larger than any body the gateway accepts)', async () => {
    const t = await seedTenant(h);
    const bytes = 8 * 1024 * 1024;
    const res = await call(h, 'GET', pleoPath(t.tenantId, `/v1/export-jobs/0b8a1f0c-3d56-4c53-9b8e-1f4a6e0c2d11/file?bytes=${bytes}`));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv');
    expect(Buffer.byteLength(res.text)).toBe(bytes);
  });

  describe('who may call', () => {
    it('no token → 401 with a code, no call made', async () => {
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { token: null });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body.error).toMatchObject({ code: 'unauthenticated', message: expect.any(String), action: expect.any(String) });
      const unknown = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { token: 'not-a-configured-token-123' });
      expect(unknown.status).toBe(401);
      expect(sandboxCalls()).toHaveLength(0);
    });

    it('an install-session token → 403: the browser step may never call Pleo', async () => {
      const t = await seedTenant(h);
      const sessionToken = 'install-session-token-for-gateway-test-0001';
      await installSessionAsIntake(h.db, { tokenHash: installSessionTokenHash(sessionToken), tenantId: t.tenantId });
      h.sandbox.state.clearRequests();
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { token: sessionToken });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
      expect(sandboxCalls()).toHaveLength(0);
      expect(h.gateway.logs.text()).not.toContain(sessionToken);
    });
  });

  describe('paths', () => {
    it.each([
      ['/v1/../_sandbox/keys', 'raw ..'],
      ['/v1/%2e%2e/_sandbox/keys', 'encoded ..'],
      ['/v1/%2E%2E/%2E%2E/x', 'upper-case encoded ..'],
      ['/v1/employees%2f..%2f..%2f_sandbox', 'encoded slash'],
      ['/v1/%252e%252e/x%5c..', 'encoded backslash'],
      ['', 'empty path'],
      ['/v1/%zz', 'undecodable'],
    ])('refuses %s (%s) with 400 invalid_pleo_path and makes no call', async (path) => {
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const res = await call(h, 'GET', `/v1/tenants/${t.tenantId}/pleo/api${path}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_pleo_path');
      expect(sandboxCalls()).toHaveLength(0);
    });

    it('refuses a malformed tenant id (400) and an unknown tenant (404)', async () => {
      expect((await call(h, 'GET', '/v1/tenants/bad%20tenant!/pleo/api/v1/employees')).body.error.code).toBe('invalid_tenant_id');
      const unknown = await call(h, 'GET', pleoPath('never-heard-of-this-tenant', '/v1/employees'));
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('tenant_not_found');
    });

    it('collapses empty segments and keeps ordinary encoded characters', async () => {
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const res = await call(h, 'GET', pleoPath(t.tenantId, '//v1//employees'));
      expect(res.status).toBe(200);
      expect(sandboxCalls()[0].path).toBe('/v1/employees');
    });
  });

  describe('connection states', () => {
    it.each([
      [{ lifecycle: 'active', health: 'reconnect_required' }, 'reconnect_required'],
      [{ lifecycle: 'disabled' }, 'disabled'],
      [{ lifecycle: 'uninstalled' }, 'uninstalled'],
      [{ lifecycle: 'not_connected' }, 'not_connected'],
    ] as const)('%j → 409 connection_not_active naming %s, no call made', async (state, status) => {
      const t = await seedTenant(h, state);
      h.sandbox.state.clearRequests();
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'));
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'connection_not_active', status });
      expect(res.body.error.message).toContain(status);
      expect(sandboxCalls()).toHaveLength(0);
    });

    it('a tenant whose first key awaits validation → 409 pending_validation', async () => {
      const tenantId = `gw-pending-${Date.now().toString(36)}`;
      await submissionAsIntake(h.db, { tenantId, fingerprint: 'e'.repeat(64) });
      const res = await call(h, 'GET', pleoPath(tenantId, '/v1/employees'));
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'connection_not_active', status: 'pending_validation' });
    });

    it('a submission superseded by a newer one that was rejected is not pending → 409 not_connected', async () => {
      const tenantId = `gw-superseded-${Date.now().toString(36)}`;
      await submissionAsIntake(h.db, { tenantId });
      const newer = await submissionAsIntake(h.db, { tenantId });
      await credentialAsRotation(h.db, newer.submissionId, { status: 'rejected', reason: 'invalid_key' });
      const res = await call(h, 'GET', pleoPath(tenantId, '/v1/employees'));
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'connection_not_active', status: 'not_connected' });
    });

    it('a degraded connection still forwards (its key is being re-checked)', async () => {
      const t = await seedTenant(h, { health: 'degraded' });
      expect((await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'))).status).toBe(200);
    });
  });

  describe('limits and failures', () => {
    it('a body over KEYWARD_GATEWAY_MAX_BODY_BYTES → 413, whether its length is declared or chunked; no call made', async () => {
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const big = Buffer.alloc(64 * 1024 + 1, 'a');
      const declared = await call(h, 'POST', pleoPath(t.tenantId, '/v1/export-jobs'), { headers: { 'content-type': 'application/json' }, body: big });
      expect(declared.status).toBe(413);
      expect(declared.body.error.code).toBe('pleo_request_too_large');
      const chunked = await call(h, 'POST', pleoPath(t.tenantId, '/v1/export-jobs'), {
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: [big.subarray(0, 40_000), big.subarray(40_000)],
      });
      expect(chunked.status).toBe(413);
      expect(sandboxCalls()).toHaveLength(0);
    });

    it('Pleo too slow → 504 pleo_timeout', async () => {
      const t = await seedTenant(h);
      h.sandbox.state.setFault({ delayMs: 3_000, count: 1 });
      try {
        const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'));
        expect(res.status).toBe(504);
        expect(res.body.error.code).toBe('pleo_timeout');
      } finally {
        h.sandbox.state.clearFault();
      }
    });

    it('Pleo unreachable → 502 pleo_bad_gateway', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => {
          const { port } = s.address() as { port: number };
          s.close(() => resolve(port));
        });
      });
      const replica = await h.startReplica({ PLEO_API_BASE_URL: `http://127.0.0.1:${closedPort}` });
      const t = await seedTenant(h);
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { instance: replica });
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe('pleo_bad_gateway');
    });

    it("Pleo's own 429 comes back with its Retry-After and does not stall other tenants", async () => {
      const t = await seedTenant(h);
      const other = await seedTenant(h);
      h.sandbox.state.setFault({ status: 429, count: 1, retryAfterSeconds: 7 });
      const limited = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'));
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('7');
      expect((await call(h, 'GET', pleoPath(other.tenantId, '/v1/employees'))).status).toBe(200);
    });

    it('a burst of concurrent calls larger than one lease but within the budget all reach Pleo', async () => {
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const burst = await Promise.all(Array.from({ length: 150 }, () => call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'))));
      expect(burst.filter((r) => r.status !== 200).map((r) => r.status)).toEqual([]);
      expect(sandboxCalls().filter((r) => r.credentialLast4 === t.key.apiKey.slice(-4))).toHaveLength(150);
    });

    it("over the credential's budget → 429 rate_limited with Retry-After, and the call is not sent", async () => {
      const replica = await h.startReplica({ KEYWARD_GATEWAY_RATE_PER_MINUTE: '3' });
      const t = await seedTenant(h);
      h.sandbox.state.clearRequests();
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { instance: replica }));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429, 429]);
      expect(answers[3].body.error.code).toBe('rate_limited');
      expect(Number(answers[3].headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(sandboxCalls()).toHaveLength(3);
      const metrics = await fetch(`${replica.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/keyward_gateway_rate_limited_total\{service="gateway"\} 2/);
    });
  });

  describe('auth failures', () => {
    it("a burst of 401s is passed to the caller (without Pleo's challenge) and publishes a bounded number of auth.failed", async () => {
      const t = await seedTenant(h);
      h.sandbox.state.revoke(t.key.id);
      const burst = await Promise.all(Array.from({ length: 60 }, () => call(h, 'GET', pleoPath(t.tenantId, '/v1/export-jobs/4f0e8a2c-1b6d-4e8f-9a3c-5d7e9f1b2c4a/file?bytes=10'))));
      expect(new Set(burst.map((r) => r.status))).toEqual(new Set([401]));
      expect(burst[0].headers['www-authenticate']).toBeUndefined();
      expect(burst[0].body).toMatchObject({ status: 401 });
      const events = await eventually(() => {
        const found = h.tap.ofType('auth.failed', t.tenantId);
        return found.length >= 3 && found;
      });
      await new Promise((r) => setTimeout(r, 1_000));
      expect(h.tap.ofType('auth.failed', t.tenantId)).toHaveLength(3);
      expect(events[0]).toMatchObject({
        producer: 'gateway',
        data: { credentialId: t.credentialId, status: 401, source: 'gateway', endpoint: '/v1/export-jobs/{id}/file', observedAt: expect.any(String) },
      });
      const metrics = await fetch(`${h.gateway.url}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/keyward_gateway_pleo_auth_failures_total\{status="401",published="false",service="gateway"\} 57/);
    });

    it('a 403 for a missing scope is an auth.failed with status 403', async () => {
      const t = await seedTenant(h, { scopes: ['accounts:read'] });
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'));
      expect(res.status).toBe(403);
      await h.tap.waitFor('auth.failed', (e) => e.tenantId === t.tenantId && e.data.status === 403 && e.data.endpoint === '/v1/employees');
    });
  });

  it('after a compromise is committed, no replica sends another call with that key — even with the key and state cached', async () => {
    const replica = await h.startReplica();
    const t = await seedTenant(h);
    // Both replicas have the connection state and the key cached.
    for (const instance of [h.gateway, replica]) expect((await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { instance })).status).toBe(200);
    await revokeAsIntake(h, t);
    h.sandbox.state.clearRequests();
    for (const instance of [h.gateway, replica]) {
      const res = await call(h, 'GET', pleoPath(t.tenantId, '/v1/employees'), { instance });
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'connection_not_active', status: 'disabled' });
    }
    expect(sandboxCalls()).toHaveLength(0);
  });

  it('health, readiness and metrics: requests by method and status class, no tenant id or path as a label', async () => {
    expect((await fetch(`${h.gateway.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${h.gateway.url}/health/ready`)).status).toBe(200);
    const metrics = await fetch(`${h.gateway.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/keyward_gateway_requests_total\{method="GET",status_class="2xx",service="gateway"\} \d+/);
    expect(metrics).toMatch(/keyward_gateway_request_duration_seconds_bucket/);
    expect(metrics).toMatch(/keyward_gateway_refused_total\{code="connection_not_active",service="gateway"\} [1-9]/);
    expect(metrics).not.toMatch(/gw-\d+|\/v1\/employees/);
  });

  it('no key, token or response body in any log line, event or answer', async () => {
    const keys = h.sandbox.state.recentRequests(1).length >= 0 ? [...(h.sandbox.state as unknown as { keysById: Map<string, { apiKey: string }> }).keysById.values()].map((k) => k.apiKey) : [];
    expect(keys.length).toBeGreaterThan(10);
    const places = {
      logs: h.gateway.logs.text(),
      events: h.tap.raw.join('\n'),
      answers: h.answers.join('\n'),
    };
    expect(places.logs).toContain('Gateway call');
    for (const [place, text] of Object.entries(places)) {
      for (const key of keys) if (text.includes(key)) throw new Error(`key material found in ${place}`);
      expect(text).not.toContain('dev-service-token');
    }
    expect(places.logs).not.toContain('Ada');
    expect(places.logs).not.toContain('caller-cookie-value');
  });
});
