import { canaryKey } from '@keyward/testing';
import { IntakeHarness, newTenant, SERVICE, startIntake } from './intake-harness';

const ERROR_SHAPE = { error: { code: expect.any(String), message: expect.any(String), action: expect.any(String) } };

describe('intake: bad input gets a clear error and nothing else', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake();
  });
  afterAll(async () => {
    await h?.close();
  });

  const keyPath = (tenant: string) => `/v1/tenants/${tenant}/pleo/key`;
  const nothingStoredFor = async (tenant: string) => {
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(0);
    expect(await h.db.query('SELECT 1 FROM secrets WHERE tenant_id = $1', [tenant])).toHaveLength(0);
  };

  it.each(['apiKey', 'api_key', 'key', 'token', 'access_token', 'secret', 'Password'])('refuses a credential in the query (?%s=) and never logs the query', async (name) => {
    const tenant = newTenant();
    const key = canaryKey('query');
    const res = await h
      .http()
      .put(`${keyPath(tenant)}?${name}=${key}`)
      .set('Authorization', SERVICE)
      .send({ apiKey: canaryKey() })
      .expect(400);
    expect(res.body).toEqual(ERROR_SHAPE);
    expect(res.body.error.code).toBe('key_in_query_rejected');
    await nothingStoredFor(tenant);
    const get = await h.http().get(`/v1/tenants/${tenant}/pleo/connection?${name}=${key}`).set('Authorization', SERVICE).expect(400);
    expect(get.body.error.code).toBe('key_in_query_rejected');
    expect(h.logs.text()).not.toContain(key);
    expect(h.logs.text()).not.toContain(`${name}=`);
  });

  it('answers 413 for a body over 16 KiB', async () => {
    const tenant = newTenant();
    const res = await h
      .http()
      .put(keyPath(tenant))
      .set('Authorization', SERVICE)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ apiKey: 'x'.repeat(17 * 1024) }))
      .expect(413);
    expect(res.body).toEqual(ERROR_SHAPE);
    expect(res.body.error.code).toBe('body_too_large');
    await nothingStoredFor(tenant);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const tenant = newTenant();
    const text = await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).set('Content-Type', 'text/plain').send(canaryKey()).expect(415);
    expect(text.body.error.code).toBe('unsupported_media_type');
    const form = await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).type('form').send({ apiKey: canaryKey() }).expect(415);
    expect(form.body.error.code).toBe('unsupported_media_type');
    await nothingStoredFor(tenant);
  });

  it('answers 400 for malformed JSON without quoting it back', async () => {
    const tenant = newTenant();
    const key = canaryKey('malformed');
    const res = await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).set('Content-Type', 'application/json').send(`{"apiKey": ${key}}`).expect(400);
    expect(res.body).toEqual(ERROR_SHAPE);
    expect(res.body.error.code).toBe('malformed_json');
    expect(res.text).not.toContain(key);
    expect(h.logs.text()).not.toContain(key);
    await nothingStoredFor(tenant);
  });

  it('answers 400 for unknown fields without naming them', async () => {
    const tenant = newTenant();
    const key = canaryKey('field');
    const res = await h
      .http()
      .put(keyPath(tenant))
      .set('Authorization', SERVICE)
      .send({ apiKey: canaryKey(), [key]: true })
      .expect(400);
    expect(res.body.error.code).toBe('unknown_fields');
    expect(res.text).not.toContain(key);
    const array = await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).send([1, 2]).expect(400);
    expect(array.body.error.code).toBe('invalid_request');
    const compromise = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', SERVICE).send({ force: true }).expect(400);
    expect(compromise.body.error.code).toBe('unknown_fields');
    await nothingStoredFor(tenant);
  });

  it('answers an unknown route with 404 in the same shape, and no stack trace anywhere', async () => {
    const res = await h.http().get('/v1/nothing-here').set('Authorization', SERVICE).expect(404);
    expect(res.body).toEqual(ERROR_SHAPE);
    expect(res.body.error.code).toBe('not_found');
    expect(res.text).not.toMatch(/at \w+ \(|node_modules|Error:/);
  });

  it('echoes a well-formed X-Correlation-Id and makes one otherwise', async () => {
    const tenant = newTenant();
    const echoed = await h.http().get(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', SERVICE).set('X-Correlation-Id', 'corr-echo-12345').expect(200);
    expect(echoed.headers['x-correlation-id']).toBe('corr-echo-12345');
    const made = await h.http().get(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', SERVICE).set('X-Correlation-Id', 'bad id!').expect(200);
    expect(made.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    const line = h.logs.lines().find((l) => l.includes('corr-echo-12345') && l.includes('HTTP request'));
    expect(JSON.parse(line!)).toMatchObject({ route: '/v1/tenants/:tenantId/pleo/connection', status: 200, correlationId: 'corr-echo-12345' });
  });

  it('counts requests by route template and submissions by outcome, never by tenant', async () => {
    const tenant = newTenant('metrics');
    await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).send({ apiKey: canaryKey() }).expect(202);
    await h.http().put(keyPath(tenant)).set('Authorization', SERVICE).send({ apiKey: 'short' }).expect(400);
    const metrics = (await h.http().get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/keyward_http_requests_total\{[^}]*route="\/v1\/tenants\/:tenantId\/pleo\/key"[^}]*status="202"/);
    expect(metrics).toMatch(/keyward_intake_submissions_total\{[^}]*outcome="pending_validation"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/keyward_intake_submissions_total\{[^}]*outcome="refused_format"/);
    expect(metrics).not.toContain(tenant);
  });

  it('describes the API at /docs with the key write-only and masked', async () => {
    const doc = (await h.http().get('/docs-json').expect(200)).body;
    expect(doc.components.schemas.KeySubmissionBody.properties.apiKey).toMatchObject({ writeOnly: true, format: 'password', type: 'string' });
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/install-sessions', '/v1/tenants/{tenantId}/pleo/key', '/v1/tenants/{tenantId}/pleo/connection', '/v1/tenants/{tenantId}/audit']),
    );
    await h.http().get('/docs').expect(200);
  });
});

describe('intake: submission rate limits', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake({ KEYWARD_SUBMISSIONS_PER_TENANT_PER_HOUR: '3', KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE: '5' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const submit = (tenant: string, auth = SERVICE) => h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', auth).send({ apiKey: canaryKey() });

  it('answers 429 with Retry-After once a tenant used its submissions for the hour', async () => {
    const tenant = newTenant();
    for (let i = 0; i < 3; i++) await submit(tenant).expect(202);
    const res = await submit(tenant).expect(429);
    expect(res.body.error.code).toBe('rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(3600);
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(3);
  });

  it('limits a caller across tenants per minute', async () => {
    // The ops token is fresh here; five attempts pass, the sixth (another tenant) does not.
    const ops = 'Bearer ops-service-token-0001';
    // Windows are fixed minutes: start well inside one so all six attempts share it.
    const second = new Date().getSeconds();
    if (second > 50) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
    for (let i = 0; i < 5; i++) await submit(newTenant(), ops).expect(202);
    const res = await submit(newTenant(), ops).expect(429);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  });
});

describe('intake: every submission attempt counts', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake({ KEYWARD_SUBMISSIONS_PER_TENANT_PER_HOUR: '3', KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE: '1000' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const put = (tenant: string, body: object) => h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', SERVICE).send(body);

  it('counts malformed keys and bodies, and decides the limit before the format', async () => {
    const tenant = newTenant();
    // Guessing keys is what the limit is for: a key too short and a body without one count as attempts.
    expect((await put(tenant, { apiKey: 'short' }).expect(400)).body.error.code).toBe('key_too_short');
    expect((await put(tenant, {}).expect(400)).body.error.code).not.toBe('rate_limited');
    await put(tenant, { apiKey: canaryKey() }).expect(202);
    // The fourth attempt is over the tenant's limit: refused as such, whatever its format.
    const over = await put(tenant, { apiKey: 'short' }).expect(429);
    expect(over.body.error.code).toBe('rate_limited');
    expect((await put(tenant, { apiKey: canaryKey() }).expect(429)).body.error.code).toBe('rate_limited');
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(1);
  });
});
