import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Pool } from 'undici';
import { DataSource } from 'typeorm';
import { loadConfig } from '@keyward/config';
import { ApiKey } from '@keyward/key-material';
import { KeywardLogger } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { createSecretStore } from '@keyward/secrets';
import { runBenchmark, withBenchDatabase } from './bench-database';
import { BENCH_SERVICE_TOKEN, benchServiceEnv, cpuTimeMs as cpuMs, quantile, startProcess, stopProcesses } from './bench-processes';

/**
 * npm run bench:gateway [-- UNLOADED_CALLS SECONDS_PER_ROUND]
 * The same Pleo call (`GET /v1/employees`, a small JSON page) straight to the sandbox and through
 * the gateway, in one run: sandbox and gateway each in their own process as deployed, the load
 * from this process over kept-alive connections both ways. Unloaded: one call at a time, added
 * latency per call. Loaded: 32 calls in flight, throughput. The gateway runs its production path
 * (auth, connection state, revocation check, shared budget, undici keep-alive, access log at info).
 * BENCH_GATEWAY_CPU_PROF=<dir> writes a V8 CPU profile of the gateway process there (open it in
 * Chrome DevTools or summarise it with `node dist/bench/cpu-profile-summary.js <file>`).
 */
const UNLOADED_CALLS = Math.min(Number(process.argv[2] ?? 2_000), 50_000);
const SECONDS = Math.min(Number(process.argv[3] ?? 5), 60);
const CONCURRENCY = 32;
const TOKEN = BENCH_SERVICE_TOKEN;
const PROFILE_DIR = process.env.BENCH_GATEWAY_CPU_PROF;

interface Target {
  name: string;
  pool: Pool;
  path: string;
  headers: Record<string, string>;
}

async function once(target: Target): Promise<number> {
  const started = process.hrtime.bigint();
  const { statusCode, body } = await target.pool.request({ method: 'GET', path: target.path, headers: target.headers });
  await body.arrayBuffer();
  if (statusCode !== 200) throw new Error(`${target.name} answered ${statusCode}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** One call at a time, the two targets alternating in blocks so drift hits both alike. */
async function unloaded(direct: Target, gateway: Target): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = { [direct.name]: [], [gateway.name]: [] };
  // warm-up
  for (let i = 0; i < 200; i++) {
    await once(direct);
    await once(gateway);
  }
  for (let done = 0; done < UNLOADED_CALLS; done += 100) {
    for (const target of done % 200 === 0 ? [direct, gateway] : [gateway, direct]) {
      for (let i = 0; i < 100; i++) samples[target.name].push(await once(target));
    }
  }
  return samples;
}

interface Round {
  perSecond: number;
  latencies: number[];
  /** CPU ms per call of each process, where /proc tells. */
  cpuPerCall: Record<string, number | undefined>;
}

/** CONCURRENCY calls in flight for SECONDS: calls per second, latency, and CPU per call of `processes`. */
async function loaded(target: Target, processes: Record<string, ChildProcess>): Promise<Round> {
  const latencies: number[] = [];
  const until = Date.now() + SECONDS * 1000;
  const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, child]) => [name, cpuMs(child)]));
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) latencies.push(await once(target));
    }),
  );
  const perSecond = latencies.length / (Number(process.hrtime.bigint() - started) / 1e9);
  const cpuPerCall = Object.fromEntries(
    Object.entries(processes).map(([name, child]) => {
      const [before, after] = [cpuBefore[name], cpuMs(child)];
      return [name, before === undefined || after === undefined ? undefined : (after - before) / latencies.length];
    }),
  );
  return { perSecond, latencies, cpuPerCall };
}

const ms = (n: number) => `${n.toFixed(3)} ms`;
const us = (cpuMsPerCall: number | undefined) => (cpuMsPerCall === undefined ? 'n/a' : `${Math.round(cpuMsPerCall * 1000)} µs`);

async function main(): Promise<void> {
  await withBenchDatabase('gateway', async (databaseUrl) => {
    const masterKey = randomBytes(32).toString('base64');
    const sandbox = await startProcess('pleo-sandbox', { NODE_ENV: 'test', LOG_LEVEL: 'warn', PLEO_SANDBOX_RATE_PER_MINUTE: '0' }, '/health/live');
    const children = [sandbox.child];
    try {
      // Arrange as rotation leaves a tenant: the key current in the store, the connection active.
      const issued = (await (await fetch(`${sandbox.url}/_sandbox/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as {
        apiKey: string;
        companyId: string;
      };
      const tenantId = `bench-${randomBytes(3).toString('hex')}`;
      const credentialId = randomUUID();
      const env = benchServiceEnv(databaseUrl, `bench${randomBytes(4).toString('hex')}`, {
        KEYWARD_MASTER_KEY: masterKey,
        PLEO_API_BASE_URL: sandbox.url,
        // The budget is not what is measured here (see the shared-budget test): high enough never to refuse.
        KEYWARD_GATEWAY_RATE_PER_MINUTE: '1000000',
      });
      const config = loadConfig('tool', env);
      const dataSource: DataSource = await createDataSource({ url: databaseUrl }).initialize();
      try {
        const store = createSecretStore(config, dataSource, KeywardLogger.create('bench', 'warn'));
        await store.putPending(tenantId, credentialId, ApiKey.fromTrusted(issued.apiKey));
        await store.promote(tenantId, credentialId, null);
        await dataSource.query(
          `INSERT INTO connections (tenant_id, status, company_id, subject_type, subject_id, active_credential_id, activated_at, last_validated_at, updated_at)
           VALUES ($1, 'active', $2, 'company', $2, $3, now(), now(), now())`,
          [tenantId, issued.companyId, credentialId],
        );
      } finally {
        await dataSource.destroy();
      }
      const gatewayProcess = await startProcess('gateway', env, '/health/ready', PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []);
      children.push(gatewayProcess.child);

      const direct: Target = {
        name: 'direct',
        pool: new Pool(sandbox.url, { connections: CONCURRENCY, pipelining: 1 }),
        path: '/v1/employees',
        headers: { authorization: `Basic ${Buffer.from(`${issued.apiKey}:`).toString('base64')}` },
      };
      const gateway: Target = {
        name: 'gateway',
        pool: new Pool(gatewayProcess.url, { connections: CONCURRENCY, pipelining: 1 }),
        path: `/v1/tenants/${tenantId}/pleo/api/v1/employees`,
        headers: { authorization: `Bearer ${TOKEN}` },
      };

      const samples = await unloaded(direct, gateway);
      const d = [...samples.direct].sort((a, b) => a - b);
      const g = [...samples.gateway].sort((a, b) => a - b);
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

      // Loaded: two rounds each, alternating, best round kept for both (the machine is shared).
      const rounds: Record<string, Round[]> = { direct: [], gateway: [] };
      const processes: Record<string, Record<string, ChildProcess>> = { direct: { sandbox: sandbox.child }, gateway: { gateway: gatewayProcess.child, sandbox: sandbox.child } };
      for (let round = 0; round < 2; round++) for (const target of round === 0 ? [direct, gateway] : [gateway, direct]) rounds[target.name].push(await loaded(target, processes[target.name]));
      const best = (name: string) => rounds[name].reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
      const ld = best('direct');
      const lg = best('gateway');
      const ldSorted = [...ld.latencies].sort((a, b) => a - b);
      const lgSorted = [...lg.latencies].sort((a, b) => a - b);

      const lines = [
        `bench:gateway — GET /v1/employees, sandbox and gateway in their own processes, keep-alive both ways`,
        `machine: ${cpus().length} cores, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')} (1/5/15 min) at the end`,
        ``,
        `unloaded (${UNLOADED_CALLS} calls each, one at a time):`,
        `  direct   p50 ${ms(quantile(d, 0.5))}  p99 ${ms(quantile(d, 0.99))}  mean ${ms(mean(d))}`,
        `  gateway  p50 ${ms(quantile(g, 0.5))}  p99 ${ms(quantile(g, 0.99))}  mean ${ms(mean(g))}`,
        `  added by the gateway: p50 ${ms(quantile(g, 0.5) - quantile(d, 0.5))} (aim ≤ 1.5 ms), p99 ${ms(quantile(g, 0.99) - quantile(d, 0.99))}`,
        ``,
        `concurrency ${CONCURRENCY} (${SECONDS} s rounds, best of 2 each):`,
        `  direct   ${ld.perSecond.toFixed(0)} calls/s  p50 ${ms(quantile(ldSorted, 0.5))}  p99 ${ms(quantile(ldSorted, 0.99))}`,
        `  gateway  ${lg.perSecond.toFixed(0)} calls/s  p50 ${ms(quantile(lgSorted, 0.5))}  p99 ${ms(quantile(lgSorted, 0.99))}`,
        `  throughput through the gateway: ${((100 * lg.perSecond) / ld.perSecond).toFixed(1)} % of direct (aim ≥ 50 %)`,
        `  CPU per call (user + system, same rounds): sandbox ${us(ld.cpuPerCall.sandbox)} direct, ${us(lg.cpuPerCall.sandbox)} behind the gateway; gateway ${us(lg.cpuPerCall.gateway)}`,
      ];
      if (PROFILE_DIR) {
        const calls = 200 + UNLOADED_CALLS + rounds.gateway.reduce((n, r) => n + r.latencies.length, 0);
        lines.push(``, `CPU profile of the gateway written to ${PROFILE_DIR}; calls through the gateway in this run, warm-up included: ${calls}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      await direct.pool.close();
      await gateway.pool.close();
    } finally {
      await stopProcesses(children);
    }
  });
}

runBenchmark('gateway', main);
