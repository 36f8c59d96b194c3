import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { inspect as describeValue } from 'node:util';
import { resolve } from 'node:path';
import { freePort } from '../../libs/testing/src/free-port';

/**
 * `docker compose up` as an SRE runs it, against the built image (`keyward:local`): every service
 * healthy, read-only and non-root, published on 127.0.0.1 only; a sandbox key goes from submit to
 * active; a call through the gateway when the image has it; the key in no container log; every
 * keyward service stops on SIGTERM with exit 0. Run by `npm run test:compose` (deploy/README.md).
 */

const ROOT = resolve(__dirname, '../..');
const IMAGE = 'keyward:local';
const PROJECT = `keyward-smoke-${process.pid}`;
const KEYWARD_SERVICES = ['intake', 'validator', 'rotation', 'monitor', 'pleo-sandbox'];
const INFRASTRUCTURE = ['postgres', 'rabbitmq', 'secrets-manager'];
const TOKEN = 'dev-service-token';

const run = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): string =>
  execFileSync(cmd, args, { cwd: ROOT, env: env ?? process.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
const succeeds = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore', timeout: 90_000 }).status === 0;

/** The v2 plugin when it is there, else Debian's docker-compose v1. */
const COMPOSE: string[] = succeeds('docker', ['compose', 'version']) ? ['docker', 'compose'] : ['docker-compose'];
/** LocalStack when it is here or can be pulled; else keyward's own emulator (docker-compose.offline.yml). */
const LOCALSTACK = 'localstack/localstack:4.14.0';
const FILES = ['-f', 'docker-compose.yml', ...(succeeds('docker', ['image', 'inspect', LOCALSTACK]) || succeeds('docker', ['pull', '-q', LOCALSTACK]) ? [] : ['-f', 'docker-compose.offline.yml'])];
const GATEWAY_IN_IMAGE = succeeds('docker', ['run', '--rm', '--entrypoint', 'test', IMAGE, '-f', 'dist/apps/gateway/main.js']);
const SERVICES = [...KEYWARD_SERVICES, ...(GATEWAY_IN_IMAGE ? ['gateway'] : [])];

const PUBLISHED = ['POSTGRES', 'RABBITMQ', 'RABBITMQ_MANAGEMENT', 'RABBITMQ_PROMETHEUS', 'SECRETS_MANAGER', 'PLEO_SANDBOX', 'INTAKE', 'VALIDATOR', 'ROTATION', 'MONITOR', 'GATEWAY'];
const ports: Record<string, number> = {};
let env: NodeJS.ProcessEnv;

const compose = (...args: string[]): string => run(COMPOSE[0], [...COMPOSE.slice(1), '-p', PROJECT, ...FILES, ...args], env);
const containerOf = (service: string): string => compose('ps', '-q', service).trim();
const inspect = (service: string): any => JSON.parse(run('docker', ['inspect', containerOf(service)]))[0];

async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((done) => setTimeout(done, 1_000));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${last instanceof Error ? last.message : describeValue(last)})` : ''}`);
}

const url = (name: string, path: string): string => `http://127.0.0.1:${ports[name]}${path}`;
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

describe(`docker compose (${COMPOSE.join(' ')}; ${FILES.includes('docker-compose.offline.yml') ? 'offline: Secrets Manager emulator' : 'LocalStack'})`, () => {
  const tenant = `smoke-${randomUUID().slice(0, 8)}`;
  let apiKey = '';

  beforeAll(async () => {
    for (const name of PUBLISHED) ports[name] = await freePort();
    env = { ...process.env, ...Object.fromEntries(PUBLISHED.map((name) => [`KEYWARD_PUBLISH_${name}`, String(ports[name])])) };
    if (!GATEWAY_IN_IMAGE) process.stdout.write('compose smoke: the gateway step is SKIPPED: dist/apps/gateway/main.js is not in the image\n');
    // --no-build: the image under test is the one built from the Dockerfile before this suite.
    compose('up', '-d', '--no-build', ...SERVICES);
    await eventually('every service healthy', () => ([...INFRASTRUCTURE, ...SERVICES].every((s) => inspect(s).State.Health?.Status === 'healthy') ? true : undefined), 420_000);
  }, 600_000);

  afterAll(() => {
    if (!env) return;
    try {
      compose('down', '-v', '--remove-orphans', '-t', '30');
    } catch (error) {
      // A container the engine could not stop in time: remove it by force, then the rest.
      process.stderr.write(`compose smoke: compose down failed (${String(error).split('\n')[0]}); removing the project's containers by force\n`);
      const ids = run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${PROJECT}`])
        .split('\n')
        .filter(Boolean);
      if (ids.length) run('docker', ['rm', '-f', '-v', ...ids]);
      compose('down', '-v', '--remove-orphans');
    }
  }, 180_000);

  it('migrates once, then runs every service healthy, non-root on a read-only root, published on 127.0.0.1 only', () => {
    expect(inspect('migrate').State).toMatchObject({ Status: 'exited', ExitCode: 0 });
    for (const service of SERVICES) {
      const container = inspect(service);
      expect({ service, user: container.Config.User, readOnly: container.HostConfig.ReadonlyRootfs }).toEqual({ service, user: '1000:1000', readOnly: true });
    }
    for (const service of [...INFRASTRUCTURE, ...SERVICES]) {
      const bindings = Object.values(inspect(service).HostConfig.PortBindings ?? {}).flat() as { HostIp: string }[];
      for (const binding of bindings) expect({ service, ip: binding.HostIp }).toEqual({ service, ip: '127.0.0.1' });
    }
  });

  it('takes a sandbox key from submit to active', async () => {
    // A loaded machine (2 cores shared by many suites) can take a minute per step; no timing is asserted.
    const issued = await fetch(url('PLEO_SANDBOX', '/_sandbox/keys'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['accounts:read', 'export-jobs:write', 'export-jobs:read'] }),
    });
    expect(issued.status).toBe(201);
    apiKey = ((await issued.json()) as { apiKey: string }).apiKey;

    const submitted = await fetch(url('INTAKE', `/v1/tenants/${tenant}/pleo/key`), {
      method: 'PUT',
      headers: { ...auth, prefer: 'wait=10' },
      body: JSON.stringify({ apiKey }),
    });
    expect([200, 202]).toContain(submitted.status);
    expect(await submitted.text()).not.toContain(apiKey);

    const connection = await eventually(
      'connection active',
      async () => {
        const body = (await (await fetch(url('INTAKE', `/v1/tenants/${tenant}/pleo/connection`), { headers: auth })).json()) as { status: string };
        return body.status === 'active' ? body : undefined;
      },
      180_000,
    );
    expect(connection).toMatchObject({ status: 'active' });
  });

  (GATEWAY_IN_IMAGE ? it : it.skip)(`calls Pleo through the gateway with the stored key${GATEWAY_IN_IMAGE ? '' : ' (SKIPPED: dist/apps/gateway/main.js is not in the image)'}`, async () => {
    expect(apiKey).not.toBe('');
    const answer = await fetch(url('GATEWAY', `/v1/tenants/${tenant}/pleo/api/v1/export-jobs`), { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await answer.text();
    expect({ status: answer.status, body }).toMatchObject({ status: 200 });
    expect(JSON.parse(body)).toMatchObject({ data: [expect.objectContaining({ status: 'completed' })] });
    expect(body).not.toContain(apiKey);
  });

  it('shows the key in no container log', () => {
    expect(apiKey).not.toBe('');
    const logs = compose('logs', '--no-color');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.includes(apiKey)).toBe(false);
  });

  it('stops every keyward service on SIGTERM with exit 0', () => {
    compose('stop', '-t', '30', ...SERVICES);
    for (const service of SERVICES) {
      expect({ service, state: inspect(service).State }).toMatchObject({ service, state: { Status: 'exited', ExitCode: 0, OOMKilled: false } });
    }
  }, 120_000);
});
