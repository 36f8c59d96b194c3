import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { createEvent } from '@keyward/contracts';
import {
  canaryKey,
  createTestDatabase,
  dropTopology,
  EventTap,
  eventually,
  findCanaries,
  publishExternal,
  QueueWatch,
  parkedQueues,
  TEST_MASTER_KEY,
  TestDatabase,
  testAmqpUrl,
  testPrefix,
} from '@keyward/testing';
import { emulatorEnvFor, freePort, SecretsManagerEmulator } from '@keyward/testing';
import { assertBuilt, SERVICES, ServiceProcess } from './stack';

/**
 * The whole system, each service its own process, against the real Postgres and RabbitMQ, the
 * Pleo sandbox and each secret backend, driven only through intake's HTTP API, the sandbox's
 * control API and published auth.failed events — the way an integration uses keyward.
 */
const TOKEN = 'e2e-service-token-0123456789';
const REQUIRED_SCOPES = 'accounts:read export-jobs:write';

interface HttpExchange {
  status: number;
  body: any;
  text: string;
}

describe.each(['local', 'aws'] as const)('keyward end to end (%s secret backend)', (backend) => {
  let db: TestDatabase;
  let prefix: string;
  let tap: EventTap;
  let sandbox: ServiceProcess;
  const services = new Map<string, ServiceProcess>();
  let emulator: SecretsManagerEmulator | undefined;
  /** Retry and parked copies (with their headers) seen while they waited. */
  let queues: QueueWatch;
  /** Every HTTP answer intake gave, for the canary search. */
  const answers: string[] = [];
  /** Every key material value used in this run. */
  const canaries: string[] = [];

  async function intake(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpExchange> {
    const res = await fetch(`${services.get('intake')!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    answers.push(text, JSON.stringify([...res.headers.entries()]));
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
  }

  async function sandboxCall(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${sandbox.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return text ? JSON.parse(text) : undefined;
  }

  async function issueKey(options: { companyId?: string; scopes?: string[]; subject?: string } = {}): Promise<{ id: string; apiKey: string; companyId: string }> {
    const key = await sandboxCall('POST', '/_sandbox/keys', options);
    canaries.push(key.apiKey);
    return key;
  }

  /** A Pleo call as the tenant, through the gateway (service token; keyward attaches the key). */
  async function throughGateway(tenant: string, path: string): Promise<HttpExchange & { headers: Headers }> {
    const res = await fetch(`${services.get('gateway')!.url}/v1/tenants/${tenant}/pleo/api${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const text = await res.text();
    answers.push(text, JSON.stringify([...res.headers.entries()]));
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, text, body, headers: res.headers };
  }

  const submit = (tenant: string, apiKey: string, wait = 15) => intake('PUT', `/v1/tenants/${tenant}/pleo/key`, { apiKey }, { prefer: `wait=${wait}` });
  const connection = async (tenant: string) => (await intake('GET', `/v1/tenants/${tenant}/pleo/connection`)).body;
  const tenantId = () => `e2e-${backend}-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    assertBuilt();
    db = await createTestDatabase();
    prefix = testPrefix();
    tap = await new EventTap(prefix).start();
    queues = new QueueWatch(() => parkedQueues(prefix), 500).start();
    sandbox = new ServiceProcess('pleo-sandbox', await freePort(), { NODE_ENV: 'test', LOG_LEVEL: 'info' });
    await sandbox.start(90_000);
    if (backend === 'aws') emulator = await SecretsManagerEmulator.start();
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'debug',
      DATABASE_URL: db.url,
      AMQP_URL: testAmqpUrl(),
      KEYWARD_AMQP_PREFIX: prefix,
      PLEO_API_BASE_URL: sandbox.url,
      PLEO_REQUIRED_SCOPES: REQUIRED_SCOPES,
      KEYWARD_SECRETS_BACKEND: backend,
      KEYWARD_MASTER_KEY: TEST_MASTER_KEY,
      KEYWARD_FINGERPRINT_PEPPER: Buffer.alloc(32, 9).toString('base64'),
      KEYWARD_SERVICE_TOKENS: `e2e=${TOKEN}`,
      KEYWARD_AUTH_FAILURE_THRESHOLD: '3',
      // Every active key is probed within ~18 s, so a revoked key is noticed without any auth.failed.
      KEYWARD_PROBE_INTERVAL_HOURS: '0.005',
      // Prefer: wait must answer at the deciding commit: the slow re-check for lost notifications is kept out of the way.
      KEYWARD_PREFER_WAIT_RECHECK_MS: '3600000',
    };
    // On aws each service calls the emulator as its own IAM role: deploy/iam/<service>.json is evaluated on every call.
    for (const name of SERVICES) services.set(name, new ServiceProcess(name, await freePort(), { ...env, ...(emulator ? emulatorEnvFor(name, emulator.endpoint) : {}) }));
    // Six Node processes starting at once on a small shared machine can take a while.
    await Promise.all([...services.values()].map((s) => s.start(90_000)));
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...services.values()].map((s) => s.stop()));
    await sandbox?.stop();
    await queues?.stop();
    await tap?.stop();
    await emulator?.stop();
    await dropTopology(prefix);
    await db?.drop();
  }, 60_000);

  it("submit → active, bound to the key's company, shown only as last4", async () => {
    const tenant = tenantId();
    const key = await issueKey();
    const res = await submit(tenant, key.apiKey);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'accepted' });
    const conn = await connection(tenant);
    expect(conn).toMatchObject({ tenantId: tenant, status: 'active', companyId: key.companyId, key: { last4: key.apiKey.slice(-4) }, error: null });
    expect(conn.scopes).toEqual(expect.arrayContaining(REQUIRED_SCOPES.split(' ')));
  });

  it("Prefer: wait answers at rotation's commit: woken by its notification, not at a re-check or the deadline", async () => {
    const wakeups = async () => {
      const text = await (await fetch(`${services.get('intake')!.url}/metrics`)).text();
      const count = (cause: string) => Number(new RegExp(`^keyward_intake_prefer_wait_wakeups_total\\{[^}]*cause="${cause}"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      return { notification: count('notification'), recheck: count('recheck'), deadline: count('deadline') };
    };
    const before = await wakeups();
    const res = await submit(tenantId(), (await issueKey()).apiKey, 30);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'accepted' });
    const after = await wakeups();
    expect(after.notification).toBeGreaterThan(before.notification);
    expect(after.recheck).toBe(before.recheck);
    expect(after.deadline).toBe(before.deadline);
  });

  it('replace → the new key is active and the old one invalidated; a rejected replacement leaves it untouched', async () => {
    const tenant = tenantId();
    const first = await issueKey();
    expect((await submit(tenant, first.apiKey)).body.status).toBe('accepted');
    const firstCredential = (await connection(tenant)).key;

    const second = await issueKey({ companyId: first.companyId });
    const replaced = await submit(tenant, second.apiKey);
    expect(replaced.body.status).toBe('accepted');
    await tap.waitFor('key.invalidated', (e) => e.tenantId === tenant && e.data.reason === 'replaced');
    expect((await connection(tenant)).key.last4).toBe(second.apiKey.slice(-4));
    expect(firstCredential.last4).toBe(first.apiKey.slice(-4));

    const unknown = canaryKey('e2e_unknown');
    canaries.push(unknown);
    const rejected = await submit(tenant, unknown);
    expect(rejected.body).toMatchObject({ status: 'rejected', reason: 'invalid_key' });
    const conn = await connection(tenant);
    expect(conn).toMatchObject({ status: 'active', key: { last4: second.apiKey.slice(-4) } });
  });

  it('refuses a key of another company and a key without the required scopes, with an action for the customer', async () => {
    const tenant = tenantId();
    const mine = await issueKey();
    await submit(tenant, mine.apiKey);
    const theirs = await issueKey({ companyId: randomUUID() });
    const mismatch = await submit(tenant, theirs.apiKey);
    expect(mismatch.body).toMatchObject({ status: 'rejected', reason: 'company_mismatch' });
    expect(mismatch.body.message).toEqual(expect.any(String));

    const fresh = tenantId();
    const narrow = await issueKey({ scopes: ['accounts:read'] });
    const scopes = await submit(fresh, narrow.apiKey);
    expect(scopes.body).toMatchObject({ status: 'rejected', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });
    const conn = await connection(fresh);
    expect(conn.status).toBe('not_connected');
    expect(conn.error).toMatchObject({ code: 'insufficient_scopes', action: expect.any(String) });
  });

  it('a submission during a Pleo outage stays pending, then becomes active — never rejected', async () => {
    const tenant = tenantId();
    const key = await issueKey();
    await sandboxCall('POST', '/_sandbox/faults', { status: 503, durationMs: 3_000 });
    const res = await submit(tenant, key.apiKey, 1);
    expect(res.status).toBe(202);
    const pending = await eventually(
      async () => {
        const s = (await intake('GET', `/v1/tenants/${tenant}/pleo/submissions/${res.body.submissionId}`)).body;
        return s.lastError ? s : undefined;
      },
      15_000,
      'lastError while Pleo is down',
    );
    expect(pending).toMatchObject({ status: 'pending_validation', lastError: { code: 'pleo_unreachable' } });
    await eventually(async () => (await connection(tenant)).status === 'active', 45_000, 'active after recovery');
    expect(tap.ofType('key.rejected', tenant)).toHaveLength(0);
  });

  it('auth failures on a revoked key → reconnect_required and exactly one alert', async () => {
    const tenant = tenantId();
    const key = await issueKey();
    await submit(tenant, key.apiKey);
    const { key: shown } = await connection(tenant);
    // The answer comes at rotation's commit; the event reaches the tap a moment later, through the outbox relay.
    const credentialId = (await tap.waitFor('key.activated', (e) => e.tenantId === tenant)).data.credentialId;
    await sandboxCall('POST', `/_sandbox/keys/${key.id}/revoke`);
    for (let i = 0; i < 5; i++) {
      await publishExternal(
        prefix,
        createEvent(
          'auth.failed',
          { tenantId: tenant, correlationId: `erp-${randomUUID()}`, producer: 'erp-sync' },
          {
            credentialId,
            status: 401,
            source: 'erp-sync',
            endpoint: '/v1/employees',
            observedAt: new Date().toISOString(),
          },
        ),
      );
    }
    await eventually(async () => (await connection(tenant)).status === 'reconnect_required', 30_000, 'reconnect_required');
    await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === tenant);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(tap.ofType('alert.reconnection_required', tenant)).toHaveLength(1);
    const conn = await connection(tenant);
    expect(conn.error).toMatchObject({ code: 'reconnect_required' });
    expect(conn.key.last4).toBe(shown.last4);
  });

  it("through the gateway: a key revoked in Pleo → the integration's calls get 401 → reconnect_required → exactly one alert, no other publisher", async () => {
    const tenant = tenantId();
    const key = await issueKey();
    expect((await submit(tenant, key.apiKey)).body.status).toBe('accepted');
    const ok = await throughGateway(tenant, '/v1/export-jobs');
    expect(ok.status).toBe(200);
    expect(ok.body.data[0]).toMatchObject({ companyId: key.companyId });

    await sandboxCall('POST', `/_sandbox/keys/${key.id}/revoke`);
    for (let i = 0; i < 20; i++) {
      const refused = await throughGateway(tenant, '/v1/export-jobs?status=completed');
      // Pleo's answer reaches the caller until the monitor has decided; then keyward refuses itself.
      expect([401, 409]).toContain(refused.status);
      expect(refused.headers.get('www-authenticate')).toBeNull();
    }
    await eventually(async () => (await connection(tenant)).status === 'reconnect_required', 30_000, 'reconnect_required');
    await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === tenant);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(tap.ofType('alert.reconnection_required', tenant)).toHaveLength(1);
    const failures = tap.ofType('auth.failed', tenant);
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures.length).toBeLessThanOrEqual(3);
    for (const failure of failures) {
      expect(failure).toMatchObject({ producer: 'gateway', data: { status: 401, source: 'gateway', endpoint: '/v1/export-jobs' } });
    }
    const after = await throughGateway(tenant, '/v1/export-jobs');
    expect(after.status).toBe(409);
    expect(after.body.error).toMatchObject({ code: 'connection_not_active', status: 'reconnect_required' });
  });

  it('the browser install step: an install session for one tenant submits and reads status, and nothing else', async () => {
    const tenant = tenantId();
    const other = tenantId();
    const session = await intake('POST', '/v1/install-sessions', { tenantId: tenant });
    expect(session).toMatchObject({ status: 201, body: { tenantId: tenant, token: expect.any(String) } });
    const asBrowser = { authorization: `Bearer ${session.body.token}` };
    const key = await issueKey();
    const res = await intake('PUT', `/v1/tenants/${tenant}/pleo/key`, { apiKey: `  ${key.apiKey}\n` }, { ...asBrowser, prefer: 'wait=15' });
    expect(res.body).toMatchObject({ status: 'accepted', key: { last4: key.apiKey.slice(-4) } });
    expect((await intake('GET', `/v1/tenants/${tenant}/pleo/connection`, undefined, asBrowser)).body).toMatchObject({ status: 'active', companyId: key.companyId });
    expect((await intake('GET', `/v1/tenants/${other}/pleo/connection`, undefined, asBrowser)).status).toBe(403);
    expect((await intake('POST', `/v1/tenants/${tenant}/pleo/compromise`, {}, asBrowser)).status).toBe(403);
    expect((await intake('GET', `/v1/tenants/${tenant}/audit`, undefined, asBrowser)).status).toBe(403);
  });

  it('a key revoked in Pleo is noticed by the scheduled probe alone → reconnect_required and one alert', async () => {
    const tenant = tenantId();
    const key = await issueKey();
    await submit(tenant, key.apiKey);
    await sandboxCall('POST', `/_sandbox/keys/${key.id}/revoke`);
    await eventually(async () => (await connection(tenant)).status === 'reconnect_required', 60_000, 'reconnect_required from a probe');
    const revalidations = tap.ofType('key.revalidate', tenant);
    expect(revalidations.length).toBeGreaterThan(0);
    expect(revalidations.every((e) => e.data.reason === 'probe')).toBe(true);
    await tap.waitFor('alert.reconnection_required', (e) => e.tenantId === tenant);
    expect(tap.ofType('alert.reconnection_required', tenant)).toHaveLength(1);
  }, 90_000);

  it('compromise → disabled at once → a new key → active; the old key never returns', async () => {
    const tenant = tenantId();
    const first = await issueKey();
    await submit(tenant, first.apiKey);
    const res = await intake('POST', `/v1/tenants/${tenant}/pleo/compromise`, {});
    expect(res).toMatchObject({ status: 200, body: { status: 'disabled' } });
    expect((await connection(tenant)).status).toBe('disabled');
    await tap.waitFor('connection.disabled', (e) => e.tenantId === tenant);

    const second = await issueKey({ companyId: first.companyId });
    expect((await submit(tenant, second.apiKey)).body.status).toBe('accepted');
    const conn = await connection(tenant);
    expect(conn).toMatchObject({ status: 'active', key: { last4: second.apiKey.slice(-4) } });
  });

  it('uninstall → uninstalled, with the audit trail kept', async () => {
    const tenant = tenantId();
    const key = await issueKey();
    await submit(tenant, key.apiKey);
    expect((await intake('DELETE', `/v1/tenants/${tenant}/pleo/connection`)).status).toBe(202);
    await eventually(async () => (await connection(tenant)).status === 'uninstalled', 20_000, 'uninstalled');
    const audit = await eventually(
      async () => {
        const body = (await intake('GET', `/v1/tenants/${tenant}/audit`)).body;
        return body.entries.some((e: { action: string }) => e.action === 'connection.uninstalled') ? body : undefined;
      },
      20_000,
      'the uninstall in the audit log',
    );
    expect(audit.chain.ok).toBe(true);
    expect(audit.entries.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['key.submitted', 'credential.activated']));
  });

  it('a worker that is down (SIGKILL) when its event arrives loses nothing: the key activates once it is back', async () => {
    const rotation = services.get('rotation')!;
    await rotation.kill();
    const tenant = tenantId();
    const key = await issueKey();
    const res = await submit(tenant, key.apiKey, 1);
    expect(res.status).toBe(202);
    await tap.waitFor('key.validated', (e) => e.tenantId === tenant);
    expect((await connection(tenant)).status).toBe('pending_validation');
    await rotation.start();
    await eventually(async () => (await connection(tenant)).status === 'active', 30_000, 'active after restart');
  });

  it('SIGTERM stops a worker cleanly while it is busy: exit code 0, and what it had taken is finished or redelivered', async () => {
    const validator = services.get('validator')!;
    const tenants = Array.from({ length: 5 }, () => tenantId());
    const keys = await Promise.all(tenants.map(() => issueKey()));
    // Pleo answers slowly, so the validator has calls in flight when the signal comes.
    await sandboxCall('POST', '/_sandbox/faults', { delayMs: 2_000, count: tenants.length });
    await Promise.all(tenants.map((tenant, i) => submit(tenant, keys[i].apiKey, 0)));
    await eventually(
      async () => {
        const { fault } = await sandboxCall('GET', '/_sandbox/faults');
        return fault === null || fault.remaining < tenants.length;
      },
      15_000,
      'a Pleo call in flight',
    );
    const started = Date.now();
    validator.clearOutput();
    expect(await validator.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(validator.text()).toMatch(/"msg":"Stopping: no new work[\s\S]*"msg":"Stopped"/);
    await sandboxCall('DELETE', '/_sandbox/faults');
    await validator.start();
    for (const tenant of tenants) await eventually(async () => (await connection(tenant)).status === 'active', 30_000, `${tenant} active`);
  });

  it('no key value, in any form, appears in any log line since start-up, message or its headers (retry and parked copies too), database row or HTTP answer', async () => {
    expect(canaries.length).toBeGreaterThan(5);
    await queues.stop();
    // The sealed store holds ciphertext only, so the whole database is searched (retry rows included, if retries live there).
    // Asynchronously: a synchronous dump blocks this process's broker heartbeats on a loaded machine.
    const { stdout: dump } = await promisify(execFile)('pg_dump', ['--data-only', '--no-owner', db.url], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const places: Record<string, string> = {
      'HTTP answers': answers.join('\n'),
      'messages on the exchange with their headers': tap.text(),
      'retry and parked copies with their headers': queues.text(),
      'database dump': dump,
      ...Object.fromEntries([...services.values()].map((s) => [`${s.name} logs since start-up`, s.allText()])),
    };
    expect(tap.raw.length).toBeGreaterThan(20);
    // The validator's first run (start-up to SIGTERM) is searched, not only its restart.
    expect(
      services
        .get('validator')!
        .allText()
        .match(/Secret store ready/g)?.length,
    ).toBeGreaterThanOrEqual(2);
    expect(findCanaries(places, canaries)).toEqual([]);
    // The parked queues were really read all along: a search over copies never read proves nothing.
    expect(queues.sweeps).toBeGreaterThan(20);
    expect(queues.failures.length).toBeLessThanOrEqual(queues.sweeps / 10);
  }, 120_000);
});
