import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiKey } from '@keyward/key-material';
import { Metrics } from '@keyward/observability';
import { canaryKey, captureLogs } from '@keyward/testing';
// The sandbox is this library's counterpart in tests: a Pleo-shaped server over real HTTP.
import { RunningPleoSandbox, startPleoSandbox } from '../../../apps/pleo-sandbox/start-pleo-sandbox';
import { PleoClient, PleoClientOptions } from './pleo-client';
import { describeFailure } from './pleo-results';

describe('PleoClient against the Pleo sandbox', () => {
  let sandbox: RunningPleoSandbox;
  const logs = captureLogs('pleo-client-test');
  const clients: PleoClient[] = [];

  beforeAll(async () => {
    sandbox = await startPleoSandbox({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sandbox?.close();
  });
  beforeEach(() => {
    sandbox.state.clearFault();
    sandbox.state.clearRequests();
  });

  const client = (overrides: Partial<PleoClientOptions> = {}) => {
    const c = new PleoClient({
      baseUrl: sandbox.url,
      timeoutMs: 1_000,
      connectTimeoutMs: 500,
      allowOrganizationKeys: false,
      metrics: new Metrics('pleo-client-test'),
      logger: logs.logger,
      breaker: { resetTimeoutMs: 400, volumeThreshold: 5, errorThresholdPercentage: 50, rollingCountTimeoutMs: 10_000 },
      ...overrides,
    });
    clients.push(c);
    return c;
  };
  const issue = (input: Parameters<RunningPleoSandbox['state']['issueKey']>[0] = {}) => {
    const key = sandbox.state.issueKey(input);
    return { ...key, apiKey: ApiKey.fromTrusted(key.apiKey), raw: key.apiKey };
  };

  it('introspects a company key: company, subject and scopes, with Basic auth in a header only', async () => {
    const pleo = client();
    const key = issue({ scopes: ['accounts:read', 'export-jobs:write'] });
    const result = await pleo.introspect(key.apiKey);
    expect(result).toEqual({
      outcome: 'valid',
      authMethod: 'API_KEY',
      companyId: key.subjectId,
      subjectType: 'company',
      subjectId: key.subjectId,
      scopes: ['accounts:read', 'export-jobs:write'],
      clientId: key.clientId,
      applicationName: key.applicationName,
    });
    const [seen] = sandbox.state.recentRequests();
    expect(seen).toMatchObject({ path: '/v1/introspect', authScheme: 'basic', authInHeader: true, credentialLast4: key.raw.slice(-4), queryHadKeyLikeValue: false, basicPasswordNotEmpty: false });
    expect(seen.userAgent).toMatch(/^keyward\/\d+\.\d+\.\d+/);
  });

  it('answers invalid_key for an unknown or revoked key, and forbidden for a missing scope', async () => {
    const pleo = client();
    expect(await pleo.introspect(ApiKey.fromTrusted(canaryKey()))).toEqual({ outcome: 'invalid_key', status: 401 });
    const key = issue({ scopes: ['accounts:read'] });
    expect(await pleo.request(key.apiKey, 'GET', '/v1/export-jobs')).toEqual({ outcome: 'forbidden', status: 403 });
    sandbox.state.revoke(key.id);
    expect(await pleo.request(key.apiKey, 'GET', '/v1/export-jobs')).toEqual({ outcome: 'invalid_key', status: 401 });
  });

  it('returns data of other endpoints through the same client', async () => {
    const key = issue();
    const result = await client().request(key.apiKey, 'GET', '/v1/employees?limit=10');
    expect(result).toMatchObject({ outcome: 'ok', status: 200, body: { data: [expect.objectContaining({ companyId: key.subjectId })] } });
  });

  it('treats organisation keys as unsupported unless multi-entity support is configured', async () => {
    const key = issue({ subject: 'organization' });
    expect(await client().introspect(key.apiKey)).toMatchObject({ outcome: 'unsupported_subject', subjectType: 'organization', subjectId: key.subjectId });
    expect(await client({ allowOrganizationKeys: true }).introspect(key.apiKey)).toMatchObject({ outcome: 'valid', subjectType: 'organization', companyId: key.subjectId });
  });

  it('reports a slow Pleo as unreachable: timeout', async () => {
    const key = issue();
    sandbox.state.setFault({ delayMs: 600, count: 1 });
    expect(await client({ timeoutMs: 200 }).introspect(key.apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'timeout' });
  });

  it('reports a refused connection as unreachable: network', async () => {
    const closed = await startPleoSandbox({ port: 0 });
    const url = closed.url;
    await closed.close();
    const pleo = client({ baseUrl: url });
    expect(await pleo.introspect(issue().apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'network' });
  });

  it('opens the circuit under a 5xx storm, fails fast without calling Pleo, and recovers half-open', async () => {
    const pleo = client();
    const key = issue();
    sandbox.state.setFault({ status: 503 });
    const storm = [];
    for (let i = 0; i < 6; i++) storm.push(await pleo.introspect(key.apiKey));
    expect(storm[0]).toMatchObject({ outcome: 'unreachable', reason: 'server_error', status: 503 });
    expect(pleo.circuitState).toBe('open');

    const callsBefore = sandbox.state.recentRequests().length;
    const fastFail = await pleo.introspect(key.apiKey);
    expect(fastFail).toMatchObject({ outcome: 'unreachable', reason: 'circuit_open' });
    expect((fastFail as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(400);
    expect(sandbox.state.recentRequests().length).toBe(callsBefore);

    sandbox.state.clearFault();
    await new Promise((r) => setTimeout(r, 450));
    expect(pleo.circuitState).toBe('half_open');
    expect(await pleo.introspect(key.apiKey)).toMatchObject({ outcome: 'valid' });
    expect(pleo.circuitState).toBe('closed');
  });

  it('re-opens at once when the half-open trial fails', async () => {
    const pleo = client();
    const key = issue();
    sandbox.state.setFault({ status: 500 });
    for (let i = 0; i < 6; i++) await pleo.introspect(key.apiKey);
    expect(pleo.circuitState).toBe('open');
    await new Promise((r) => setTimeout(r, 450));
    expect(await pleo.introspect(key.apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'server_error' });
    expect(pleo.circuitState).toBe('open');
  });

  it('does not open the circuit for a burst of 401s and 403s for different keys', async () => {
    const pleo = client();
    for (let i = 0; i < 30; i++) {
      expect(await pleo.introspect(ApiKey.fromTrusted(canaryKey(`burst${i}`)))).toMatchObject({ outcome: 'invalid_key' });
    }
    const limited = issue({ scopes: [] });
    for (let i = 0; i < 10; i++) expect(await pleo.request(limited.apiKey, 'GET', '/v1/employees')).toMatchObject({ outcome: 'forbidden' });
    expect(pleo.circuitState).toBe('closed');
    expect(await pleo.introspect(issue().apiKey)).toMatchObject({ outcome: 'valid' });
  });

  it('honours Retry-After: no call for that credential until it has passed', async () => {
    const pleo = client({ breaker: { volumeThreshold: 100 } });
    const key = issue();
    const other = issue();
    sandbox.state.setFault({ status: 429, count: 1, retryAfterSeconds: 1 });
    const limited = await pleo.introspect(key.apiKey);
    expect(limited).toMatchObject({ outcome: 'unreachable', reason: 'rate_limited', status: 429, retryAfterMs: 1_000 });

    const sent = () => sandbox.state.recentRequests().filter((r) => r.credentialLast4 === key.raw.slice(-4)).length;
    expect(sent()).toBe(1);
    const deferred = await pleo.introspect(key.apiKey);
    expect(deferred).toMatchObject({ outcome: 'unreachable', reason: 'rate_limited' });
    expect((deferred as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(sent()).toBe(1);
    // Another credential is not held back.
    expect(await pleo.introspect(other.apiKey)).toMatchObject({ outcome: 'valid' });

    await new Promise((r) => setTimeout(r, 1_050));
    expect(await pleo.introspect(key.apiKey)).toMatchObject({ outcome: 'valid' });
    expect(sent()).toBe(2);
  });

  it("keeps Pleo reachable for tenant B however many of tenant A's credentials are rate limited", async () => {
    const pleo = client(); // volumeThreshold 5, 50 %: five failures of Pleo itself would open it
    const limited = Array.from({ length: 12 }, () => issue());
    sandbox.state.setFault({ status: 429, count: limited.length, retryAfterSeconds: 60 });
    for (const key of limited) expect(await pleo.introspect(key.apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'rate_limited', status: 429 });
    expect(pleo.circuitState).toBe('closed');
    // Each limited credential is held back for its own Retry-After, without a call to Pleo…
    const before = sandbox.state.recentRequests().length;
    expect(await pleo.introspect(limited[0].apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'rate_limited' });
    expect(sandbox.state.recentRequests().length).toBe(before);
    // …while another tenant's credential goes through.
    expect(await pleo.introspect(issue().apiKey)).toMatchObject({ outcome: 'valid' });
  });

  it('opens the shared circuit on failures of Pleo itself (5xx)', async () => {
    const pleo = client();
    sandbox.state.setFault({ status: 503, count: 6 });
    for (let i = 0; i < 6; i++) await pleo.introspect(issue().apiKey);
    expect(pleo.circuitState).toBe('open');
    expect(await pleo.introspect(issue().apiKey)).toMatchObject({ outcome: 'unreachable', reason: 'circuit_open' });
  });

  describe('answers keyward does not understand', () => {
    let server: Server;
    let url: string;
    let reply: { status: number; body: string } = { status: 200, body: '' };
    beforeAll(async () => {
      server = createServer((_req, res) => {
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(reply.body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it.each([
      ['not JSON', 200, '<html>hello</html>', /not JSON/],
      ['missing data', 200, '{"something":"else"}', /introspection body/],
      ['an unknown subject', 200, JSON.stringify({ data: { authMethod: 'API_KEY', scope: 'a:b', subjectURN: 'urn:pleo:user:123' } }), /subjectURN/],
      ['a 404', 404, '{}', /HTTP 404/],
    ])('returns unexpected_response for %s', async (_what, status, body, detail) => {
      reply = { status, body };
      const result = await client({ baseUrl: url }).introspect(ApiKey.fromTrusted(canaryKey()));
      expect(result).toMatchObject({ outcome: 'unexpected_response', status });
      expect((result as { detail: string }).detail).toMatch(detail);
    });
  });

  it('never lets the key into a log line, a result or an error', async () => {
    const canary = canaryKey();
    const pleo = client();
    const results = [await pleo.introspect(ApiKey.fromTrusted(canary))];
    sandbox.state.setFault({ status: 500, count: 1 });
    results.push(await pleo.introspect(ApiKey.fromTrusted(canary)));
    const messages = results.map((r) => (r.outcome === 'valid' || r.outcome === 'unsupported_subject' ? '' : describeFailure(r)));
    const everything = JSON.stringify(results) + messages.join('\n') + logs.text();
    expect(everything).not.toContain(canary);
    expect(everything).not.toContain(Buffer.from(`${canary}:`).toString('base64'));
    expect(JSON.stringify(sandbox.state.recentRequests())).not.toContain(canary);
  });
});
