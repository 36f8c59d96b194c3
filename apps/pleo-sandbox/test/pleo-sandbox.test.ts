import { randomUUID } from 'node:crypto';
import { RunningPleoSandbox, startPleoSandbox } from '../start-pleo-sandbox';

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

describe('Pleo sandbox', () => {
  let sandbox: RunningPleoSandbox;

  beforeAll(async () => {
    sandbox = await startPleoSandbox({ port: 0 });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  const control = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${sandbox.url}/_sandbox${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const issue = async (body: Record<string, unknown> = {}) => (await control<{ id: string; apiKey: string; companyId: string }>('POST', '/keys', body)).body;
  const call = (path: string, key?: string) => fetch(`${sandbox.url}${path}`, { headers: key ? { authorization: basic(key) } : {} });

  afterEach(async () => {
    await control('DELETE', '/faults');
  });

  it('issues long, realistic keys with the default scopes and introspects them like Pleo', async () => {
    const companyId = randomUUID();
    const key = await issue({ companyId });
    expect(key.apiKey).toMatch(/^pleo_[A-Za-z0-9]{40}$/);
    expect(key.companyId).toBe(companyId);

    const res = await call('/v1/introspect', key.apiKey);
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: Record<string, string> };
    expect(data).toMatchObject({ authMethod: 'API_KEY', subjectURN: `urn:pleo:company:${companyId}` });
    expect(data.scope.split(' ')).toEqual(expect.arrayContaining(['accounts:read', 'export-jobs:read', 'export-jobs:write', 'users:read']));
    expect(typeof data.clientId).toBe('string');
    expect(typeof data.applicationName).toBe('string');
  });

  it("answers 401 in Pleo's shape for unknown, missing and revoked keys", async () => {
    expect((await call('/v1/introspect', 'pleo_not_a_key_we_issued_0000000000000000')).status).toBe(401);
    const missing = await call('/v1/introspect');
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ status: 401, title: 'Unauthorized' });

    const key = await issue();
    expect((await control('POST', `/keys/${key.id}/revoke`)).body).toMatchObject({ revoked: true, last4: key.apiKey.slice(-4) });
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(401);
  });

  it('gives organisation keys an organisation subject', async () => {
    const key = await issue({ subject: 'organization' });
    const { data } = (await (await call('/v1/introspect', key.apiKey)).json()) as { data: { subjectURN: string } };
    expect(data.subjectURN).toBe(`urn:pleo:organization:${key.companyId}`);
  });

  it('answers the data endpoints 200, 401 or 403 by key state and scopes', async () => {
    const key = await issue({ scopes: ['export-jobs:read'] });
    expect((await call('/v1/export-jobs', key.apiKey)).status).toBe(200);
    expect((await call('/v1/employees', key.apiKey)).status).toBe(403);

    await control('PUT', `/keys/${key.id}/scopes`, { scopes: 'users:read' });
    expect((await call('/v1/employees', key.apiKey)).status).toBe(200);
    const forbidden = await call('/v1/export-jobs', key.apiKey);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ status: 403 });

    await control('POST', `/keys/${key.id}/revoke`);
    expect((await call('/v1/employees', key.apiKey)).status).toBe(401);
  });

  it('injects faults for a count, with Retry-After on 429, and stops by itself', async () => {
    const key = await issue();
    expect((await control('POST', '/faults', { status: 429, count: 2, retryAfterSeconds: 3 })).status).toBe(201);
    const first = await call('/v1/introspect', key.apiKey);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('3');
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(429);
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(200);
  });

  it('injects faults for a duration, and delays', async () => {
    const key = await issue();
    await control('POST', '/faults', { status: 503, durationMs: 300 });
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(503);
    await new Promise((r) => setTimeout(r, 350));
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(200);

    await control('POST', '/faults', { delayMs: 200, count: 1 });
    const started = Date.now();
    expect((await call('/v1/introspect', key.apiKey)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('refuses malformed control requests', async () => {
    expect((await control('POST', '/faults', { status: 418 })).status).toBe(422);
    expect((await control('POST', '/keys', { subject: 'person' })).status).toBe(422);
    expect((await control('POST', `/keys/${randomUUID()}/revoke`)).status).toBe(404);
  });

  it('records requests with credentials as last4 only, and notices keys in query strings', async () => {
    const key = await issue();
    await control('DELETE', '/requests');
    await call('/v1/introspect', key.apiKey);
    await fetch(`${sandbox.url}/v1/introspect?api_key=${key.apiKey}`);
    const { body } = await control<{ requests: Record<string, unknown>[] }>('GET', '/requests');
    expect(body.requests).toHaveLength(2);
    expect(body.requests[0]).toMatchObject({ path: '/v1/introspect', status: 200, authScheme: 'basic', authInHeader: true, credentialLast4: key.apiKey.slice(-4), queryHadKeyLikeValue: false });
    expect(body.requests[1]).toMatchObject({ status: 401, authInHeader: false, queryHadKeyLikeValue: true });
    expect(JSON.stringify(body)).not.toContain(key.apiKey);
  });

  it('pages the request log by seq, so a reader that polls misses nothing', async () => {
    const key = await issue();
    await (await call('/v1/introspect', key.apiKey)).text();
    const { body: first } = await control<{ requests: { seq: number }[] }>('GET', '/requests?limit=1');
    await (await call('/v1/introspect', key.apiKey)).text();
    await (await call('/v1/introspect', 'pleo_unknown')).text();
    const { body: after } = await control<{ requests: { seq: number; status: number }[] }>('GET', `/requests?after=${first.requests[0].seq}`);
    expect(after.requests.map((r) => r.seq)).toEqual([first.requests[0].seq + 1, first.requests[0].seq + 2]);
    expect(after.requests.map((r) => r.status)).toEqual([200, 401]);
  });
});
