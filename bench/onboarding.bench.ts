import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { Client } from 'pg';
import { Pool } from 'undici';
import { deleteTopology, TopologyNames } from '@keyward/messaging';
import { emulatorEnvFor, RATE_QUOTA_USAGE_PATH, RateQuotaName, RateQuotaUsage } from '../libs/testing/src/secrets-manager-emulator';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { BENCH_SERVICE_TOKEN, benchServiceEnv, stopProcesses } from './bench-processes';
import { freePort } from '../libs/testing/src/free-port';

/**
 * npm run bench:onboarding [-- TENANTS]
 * TENANTS new tenants (default 5,000) submit their key at once, against the Secrets Manager
 * emulator enforcing AWS's request-rate quotas, through two intake and two rotation processes
 * (plus the validator and the Pleo sandbox; the monitor plays no part in onboarding), every one
 * its own process on the `aws` backend under its own IAM role, all sharing one
 * KEYWARD_SECRETS_WRITE_RATE (40/s unless set in the environment). Prints: tenants active,
 * throttling that surfaced (answers 503 from intake, calls given up), parked events, the write
 * rate Secrets Manager saw beside the budget, and the time it took beside the budget's lower
 * bound (the calls each quota needed ÷ the rate).
 */
const TENANTS = Math.max(1, Math.min(Number(process.argv[2] ?? 5_000), 50_000));
const RATE = Number(process.env.KEYWARD_SECRETS_WRITE_RATE ?? 40);
const TOKEN = BENCH_SERVICE_TOKEN;
const dist = join(__dirname, '..');

interface Service {
  name: string;
  url: string;
  child: ChildProcess;
}

/** A service from dist/apps, or the Secrets Manager emulator (dist/scripts), as its own process. */
async function startProcess(service: string, label: string, env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const entry = service === 'secrets-manager-emulator' ? join(dist, 'scripts', 'secrets-manager-emulator.js') : join(dist, 'apps', service, 'main.js');
  const child = spawn(process.execPath, [entry], {
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const readyPath = service === 'pleo-sandbox' ? '/health/live' : service === 'secrets-manager-emulator' ? RATE_QUOTA_USAGE_PATH : '/health/ready';
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}${readyPath}`)).ok) return { name: label, url, child };
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${label} not ready`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs `work` over `items`, `concurrency` at a time. */
async function inBatches<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** Sums one Prometheus metric over the given services' /metrics, by a label's value (`*` when none). */
async function scrape(services: Service[], metric: string, byLabel?: string): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const service of services) {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      const key = byLabel ? (new RegExp(`${byLabel}="([^"]*)"`).exec(line)?.[1] ?? '*') : '*';
      sums.set(key, (sums.get(key) ?? 0) + value);
    }
  }
  return sums;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const count = (n: number) => n.toLocaleString('en-US');

async function main(): Promise<void> {
  await withBenchDatabase('onboarding', async (databaseUrl) => {
    const prefix = `bench${randomBytes(4).toString('hex')}`;
    const services: Service[] = [];
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const env = benchServiceEnv(databaseUrl, prefix, {
        LOG_LEVEL: 'warn',
        KEYWARD_FINGERPRINT_PEPPER: randomBytes(32).toString('base64'),
        KEYWARD_SECRETS_BACKEND: 'aws',
        KEYWARD_SECRETS_WRITE_RATE: String(RATE),
        // One integration backend onboarding every customer: its per-caller limit is not what is measured.
        KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE: '1000000',
      });
      const sandbox = await startProcess('pleo-sandbox', 'pleo-sandbox', { NODE_ENV: 'test', LOG_LEVEL: 'warn', PLEO_SANDBOX_RATE_PER_MINUTE: '0' });
      services.push(sandbox);
      // AWS's documented quotas (50 writes/s, 50 CreateSecret/s, …), counted where the calls arrive: a process of its own.
      const emulator = await startProcess('secrets-manager-emulator', 'secrets-manager-emulator', {});
      services.push(emulator);
      const rateQuotaUsage = async () => (await (await fetch(`${emulator.url}${RATE_QUOTA_USAGE_PATH}`)).json()) as Partial<Record<RateQuotaName, RateQuotaUsage>>;
      const withPleo = { ...env, PLEO_API_BASE_URL: sandbox.url };
      const as = (service: string) => ({ ...withPleo, ...emulatorEnvFor(service, emulator.url) });
      // Two at a time: five Node processes booting at once on two cores take longer than in pairs.
      services.push(...(await Promise.all([startProcess('validator', 'validator', as('validator')), startProcess('rotation', 'rotation-1', as('rotation'))])));
      services.push(...(await Promise.all([startProcess('rotation', 'rotation-2', as('rotation')), startProcess('intake', 'intake-1', as('intake'))])));
      services.push(await startProcess('intake', 'intake-2', as('intake')));
      const intakes = services.filter((s) => s.name.startsWith('intake'));
      const workers = services.filter((s) => s.name.startsWith('intake') || s.name.startsWith('rotation'));

      // Arrange: one Pleo key per tenant, issued by the sandbox.
      const keys: string[] = [];
      await inBatches(
        Array.from({ length: TENANTS }, (_, i) => i),
        32,
        async () => {
          const res = await fetch(`${sandbox.url}/_sandbox/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
          keys.push(((await res.json()) as { apiKey: string }).apiKey);
        },
      );
      const tenant = (i: number) => `onboard-${i}`;
      process.stderr.write(`bench:onboarding — ${count(TENANTS)} tenants, keys issued; submitting all at once\n`);

      // Act: every tenant's key submitted at once, alternately to the two intakes.
      const pools = intakes.map((s) => new Pool(s.url, { connections: Math.ceil(TENANTS / intakes.length), pipelining: 1, headersTimeout: 0, bodyTimeout: 0 }));
      const answers = new Map<number, number>();
      let retried = 0;
      const startedAt = Date.now();
      const submitted = Promise.all(
        keys.map(async (apiKey, i) => {
          for (;;) {
            const res = await pools[i % pools.length].request({
              method: 'PUT',
              path: `/v1/tenants/${tenant(i)}/pleo/key`,
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
              body: JSON.stringify({ apiKey }),
            });
            await res.body.text();
            answers.set(res.statusCode, (answers.get(res.statusCode) ?? 0) + 1);
            if (res.statusCode !== 503) return;
            // As an integration would: wait Retry-After and submit again (counted as surfaced).
            retried++;
            await new Promise((r) => setTimeout(r, Number(res.headers['retry-after'] ?? 30) * 1000));
          }
        }),
      );
      let submissionsDoneAt = 0;
      void submitted.then(() => (submissionsDoneAt = Date.now()));

      // Wait until every tenant is active (or the patience of 3× the lower bound plus 5 minutes runs out).
      const patienceMs = ((TENANTS * 5) / RATE) * 3 * 1000 + 300_000;
      let active = 0;
      let lastReport = Date.now();
      while (active < TENANTS && Date.now() - startedAt < patienceMs) {
        await new Promise((r) => setTimeout(r, 2_000));
        active = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM connections WHERE status = 'active'`)).rows[0].n);
        if (Date.now() - lastReport >= 30_000) {
          lastReport = Date.now();
          const writes = (await rateQuotaUsage()).writes;
          process.stderr.write(`  ${seconds(Date.now() - startedAt)}: ${count(active)} active, ${count(writes?.accepted ?? 0)} writes so far\n`);
        }
      }
      await submitted;
      const [{ last }] = (await db.query(`SELECT extract(epoch FROM max(activated_at)) * 1000 AS last FROM connections WHERE status = 'active'`)).rows as { last: number }[];
      const elapsedMs = Number(last) - startedAt;

      // Observe.
      const usage = await rateQuotaUsage();
      const throttledByAws = Object.values(usage).reduce((sum, u) => sum + (u?.throttled ?? 0), 0);
      const throttles = await scrape(workers, 'keyward_secrets_throttled_total', 'outcome');
      const refusedTurns = [...(await scrape(workers, 'keyward_secrets_budget_refused_total')).values()].reduce((a, b) => a + b, 0);
      const waitSum = await scrape(workers, 'keyward_secrets_budget_wait_seconds_sum', 'quota');
      const waitCount = await scrape(workers, 'keyward_secrets_budget_wait_seconds_count', 'quota');
      const meanWait = (quota: string) => ((waitSum.get(quota) ?? 0) / Math.max(1, waitCount.get(quota) ?? 0)) * 1000;
      const connection = await connect(BENCH_AMQP_URL);
      const channel = await connection.createChannel();
      const names = new TopologyNames(prefix);
      let parked = 0;
      for (const subscriber of ['validator', 'rotation'] as const) parked += (await channel.checkQueue(names.parkedQueue(subscriber))).messageCount;
      const rejected = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM validations WHERE event_type = 'key.rejected'`)).rows[0].n);
      await deleteTopology(channel, names).catch(() => undefined);
      await connection.close();
      for (const pool of pools) await pool.close();

      const writes = usage.writes ?? { accepted: 0, throttled: 0, peakPerSecond: 0 };
      const writeSpanMs = (writes.lastAt ?? 0) - (writes.firstAt ?? 0);
      const achieved = writeSpanMs > 0 ? writes.accepted / (writeSpanMs / 1000) : 0;
      const bounds = (['writes', 'createSecret', 'listSecretVersionIds'] as const).map((q) => ({ quota: q, calls: usage[q]?.accepted ?? 0, boundMs: ((usage[q]?.accepted ?? 0) / RATE) * 1000 }));
      const bound = bounds.reduce((a, b) => (b.boundMs > a.boundMs ? b : a));
      const surfaced = (answers.get(503) ?? 0) + (throttles.get('surfaced') ?? 0) + refusedTurns;

      const lines = [
        `bench:onboarding — ${count(TENANTS)} tenants submitted at once; Secrets Manager emulator with AWS's quotas; 2 intake, 2 rotation, 1 validator, sandbox`,
        `machine: ${cpus().length} cores, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' / ')} (1/5/15 min) at the end`,
        ``,
        `active: ${count(active)} of ${count(TENANTS)}${active === TENANTS ? '' : '  ** NOT ALL **'} (rejected verdicts: ${count(rejected)})`,
        `throttling surfaced: ${count(surfaced)} (intake 503: ${count(answers.get(503) ?? 0)}, resubmitted ${count(retried)}; calls given up throttled: ${count(throttles.get('surfaced') ?? 0)}; turns refused: ${count(refusedTurns)})`,
        `  ThrottlingException answered by Secrets Manager: ${count(throttledByAws)}, every one retried by the store (${count(throttles.get('retried') ?? 0)} retries)`,
        `parked: ${count(parked)}`,
        `intake answers: ${[...answers.entries()].map(([status, n]) => `${status}×${count(n)}`).join(', ')}; all answered after ${seconds(submissionsDoneAt - startedAt)}`,
        ``,
        `writes (PutSecretValue + UpdateSecretVersionStage): ${count(writes.accepted)} (${(writes.accepted / TENANTS).toFixed(2)} per tenant) in ${seconds(writeSpanMs)}`,
        `  achieved ${achieved.toFixed(1)} writes/s against a budget of ${RATE}/s: ${((100 * achieved) / RATE).toFixed(1)} % (aim ≥ 90 %); busiest second ${writes.peakPerSecond} (AWS allows 50)`,
        `other quotas: ${bounds
          .filter((b) => b.quota !== 'writes')
          .map((b) => `${b.quota} ${count(b.calls)} (busiest second ${usage[b.quota]?.peakPerSecond ?? 0})`)
          .join(', ')}`,
        `waiting for a turn, mean: ${['writes', 'createSecret', 'listSecretVersionIds'].map((q) => `${q} ${meanWait(q).toFixed(0)} ms`).join(', ')}`,
        ``,
        `elapsed (submissions sent → last tenant active): ${seconds(elapsedMs)}`,
        `budget's lower bound (${bound.quota}: ${count(bound.calls)} calls ÷ ${RATE}/s): ${seconds(bound.boundMs)} — elapsed is ${(elapsedMs / bound.boundMs).toFixed(2)}× the bound`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      if (active !== TENANTS) throw new Error(`only ${active} of ${TENANTS} tenants became active`);
    } finally {
      await stopProcesses(services.map((s) => s.child));
      await db.end().catch(() => undefined);
    }
  });
}

runBenchmark('onboarding', main);
