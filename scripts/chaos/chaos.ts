import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { PrivateBroker, PrivatePostgres, startPrivateBroker, startPrivatePostgres } from '../../libs/testing/src/private-services';
import { LOCKS } from '../../libs/persistence/src/locks';
import { emulatorEnvFor, SecretsManagerEmulator } from '../../libs/testing/src/secrets-manager-emulator';
import { problemCode } from './answers';
import { BrokerView, TraceTap } from './broker-view';
import { CanaryScanner } from './canary-scanner';
import { asPlanned, Driver, IssuedKey, TenantPlan } from './driver';
import { Database, Findings, judge, MetricsScraper, pgDump, PleoRequestLog, RetryRowScanner, tenantsByPhase } from './evidence';
import { freePort } from '../../libs/testing/src/free-port';
import { ExitRecord, isBuilt, ServiceName, ServiceProcess } from './processes';
import { PROFILES, Profile } from './profiles';
import { printReport, PhaseRecord } from './report';

/**
 * `npm run chaos [-- --long]`: the whole stack as real processes, two replicas of every worker
 * (and of the gateway when it is built), against a RabbitMQ node and a Postgres cluster of its
 * own; tenants driven through their lifecycle while faults are injected; then a table of what
 * was published, consumed, retried, parked, lost, duplicated and leaked. Exit 1 if any count is off.
 */
const TOKEN = `chaos-${randomBytes(12).toString('hex')}`;
const SHUTDOWN_DEADLINE_MS = 25_000;
const PROBE_PHASE = 'revoked in Pleo, noticed by probes alone (judged at the end)';
const SECRET_OPERATIONS = ['CreateSecret', 'PutSecretValue', 'GetSecretValue', 'UpdateSecretVersionStage', 'DescribeSecret', 'ListSecretVersionIds', 'DeleteSecret', 'RestoreSecret'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (text: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);

interface Stack {
  broker: PrivateBroker;
  view: BrokerView;
  pg: PrivatePostgres;
  /** The Secrets Manager stand-in, when the run uses the aws backend (`--aws`). */
  emulator?: SecretsManagerEmulator;
  dbUrl: string;
  db: Database;
  sandbox: ServiceProcess;
  services: ServiceProcess[];
  scanner: CanaryScanner;
  tap: TraceTap;
  metrics: MetricsScraper;
  pleo: PleoRequestLog;
  retryRows: RetryRowScanner;
  driver: Driver;
  prefix: string;
  phases: PhaseRecord[];
  failures: string[];
  /** Two probe intervals after the first key revoked in Pleo alone: its tenant must be noticed by then. */
  probeDeadline?: number;
  /** Tenants made active in the first phase and handed to later phases (one wait instead of many). */
  pool: { t: TenantPlan; key: IssuedKey }[];
}

function replicas(stack: Stack, service: ServiceName): ServiceProcess[] {
  return stack.services.filter((s) => s.service === service);
}

async function startStack(profile: Profile): Promise<Stack> {
  say('Starting a private Postgres cluster and a private RabbitMQ node (the shared ones are never touched)…');
  const [pg, broker] = await Promise.all([startPrivatePostgres(), startPrivateBroker({ name: 'kwchaos' })]);
  const dbUrl = await pg.createMigratedDatabase('keyward_chaos');
  say(`  Postgres 127.0.0.1:${pg.port}, RabbitMQ ${broker.nodeName} on 127.0.0.1:${broker.port}`);
  const view = new BrokerView(broker.nodeName, broker.url);
  const scanner = new CanaryScanner();
  const tap = new TraceTap(view, scanner);
  await tap.start();

  const prefix = 'keyward';
  const emulator = profile.backend === 'aws' ? await SecretsManagerEmulator.start() : undefined;
  const sandbox = new ServiceProcess('pleo-sandbox', 1, await freePort(), { NODE_ENV: 'test', LOG_LEVEL: 'info' });
  await sandbox.start();
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: dbUrl,
    AMQP_URL: broker.url,
    KEYWARD_AMQP_PREFIX: prefix,
    KEYWARD_DB_POOL_SIZE: '5',
    PLEO_API_BASE_URL: sandbox.url,
    PLEO_REQUIRED_SCOPES: 'accounts:read export-jobs:write',
    PLEO_BREAKER_RESET_MS: '3000',
    // Pleo's answer may be held for 15 s on purpose (work in flight before a kill), longer than
    // the default timeout; rabbitmqctl needs seconds per call on a loaded machine to show it.
    PLEO_TIMEOUT_MS: '20000',
    KEYWARD_SECRETS_BACKEND: profile.backend,
    ...(emulator ? { AWS_ENDPOINT_URL_SECRETS_MANAGER: emulator.endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'chaos', AWS_SECRET_ACCESS_KEY: 'chaos' } : {}),
    KEYWARD_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYWARD_FINGERPRINT_PEPPER: randomBytes(32).toString('base64'),
    KEYWARD_SERVICE_TOKENS: `chaos=${TOKEN}`,
    KEYWARD_SUBMISSIONS_PER_CALLER_PER_MINUTE: '1000000',
    KEYWARD_SUBMISSIONS_PER_TENANT_PER_HOUR: '1000',
    KEYWARD_AUTH_FAILURE_THRESHOLD: '3',
    KEYWARD_PROBE_INTERVAL_HOURS: String(profile.probeIntervalHours),
    KEYWARD_PROBE_SHARE_OF_RATE_LIMIT: '0.05',
    PLEO_RATE_LIMIT_PER_MINUTE: '60000',
    KEYWARD_GATEWAY_RATE_PER_MINUTE: '100000',
  };
  const services: ServiceProcess[] = [];
  const wanted: ServiceName[] = ['intake', 'validator', 'rotation', 'monitor', ...(isBuilt('gateway') ? (['gateway'] as const) : [])];
  for (const service of wanted) {
    // With the emulator, each service signs with its own deployed role's credentials (ADR 0017).
    const own = emulator ? { ...env, ...emulatorEnvFor(service, emulator.endpoint) } : env;
    for (let replica = 1; replica <= 2; replica++) services.push(new ServiceProcess(service, replica, await freePort(), own));
  }
  say(`Starting ${services.map((s) => s.name).join(', ')} and pleo-sandbox as processes…`);
  // Two at a time: ten Node processes booting at once on two cores take longer than one by one.
  for (let i = 0; i < services.length; i += 2) await Promise.all(services.slice(i, i + 2).map((s) => s.start(180_000)));
  if (!isBuilt('gateway')) say('  (no gateway in dist/: auth failures are published as another backend would)');

  const metrics = new MetricsScraper(services, scanner);
  metrics.start();
  const pleo = new PleoRequestLog(sandbox);
  pleo.start();
  const db = new Database(dbUrl);
  const retryRows = new RetryRowScanner(new Database(dbUrl), scanner);
  retryRows.start();
  const driver = new Driver(replicas({ services } as Stack, 'intake'), replicas({ services } as Stack, 'gateway'), sandbox, scanner, TOKEN, broker.url, `${prefix}.events`);
  return { broker, view, pg, emulator, dbUrl, db, sandbox, services, scanner, tap, metrics, pleo, retryRows, driver, prefix, phases: [], failures: [], pool: [], probeDeadline: undefined };
}

// ---- phases ---------------------------------------------------------------------------------

async function outboxBacklog(stack: Stack): Promise<number> {
  const [row] = await stack.db.query<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL');
  return Number(row.n);
}

/** Waits until every tenant of the phase is as planned and the outbox is drained; returns ms since `from`. */
async function awaitRecovery(stack: Stack, phase: PhaseRecord, timeoutMs: number): Promise<void> {
  const pending = new Set([...stack.driver.tenants.values()].filter((t) => t.phase === phase.name));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const batch = [...pending];
    for (let i = 0; i < batch.length; i += 10) {
      await Promise.all(
        batch.slice(i, i + 10).map(async (t) => {
          if (asPlanned(t, await stack.driver.connection(t))) pending.delete(t);
        }),
      );
    }
    if (pending.size === 0 && (await outboxBacklog(stack)) === 0) {
      phase.recoveredAt = Date.now();
      return;
    }
    await sleep(500);
  }
  phase.notes.push(
    `not recovered within ${timeoutMs / 1000} s: ${pending.size} tenant(s) not as planned, e.g. ${[...pending]
      .slice(0, 3)
      .map((t) => `${t.id} (${t.story})`)
      .join('; ')}`,
  );
  phase.notes.push(`at the deadline: ${await diagnose(stack, [...pending])}`);
}

/** What an operator would look at when a tenant is stuck: queues, outbox, retries, the submission. */
async function diagnose(stack: Stack, stuck: TenantPlan[]): Promise<string> {
  const queues = (await stack.view.queues().catch(() => [])).filter((q) => q.name !== 'chaos.firehose' && (q.messages || q.unacked)).map((q) => `${q.name}=${q.messages}+${q.unacked}`);
  const retries = await delayedRetriesWaiting(stack).catch(() => -1);
  const attempts = await stack.db.query<{ tenant_id: string; attempts: number; last_error_code: string | null; parked_at: Date | null; last_attempt_at: Date }>(
    'SELECT tenant_id, attempts, last_error_code, parked_at, last_attempt_at FROM validation_attempts WHERE tenant_id = ANY($1)',
    [stuck.slice(0, 5).map((t) => t.id)],
  );
  return [
    `queues ${queues.join(', ') || 'empty'}`,
    `outbox backlog ${await outboxBacklog(stack)}`,
    `delayed retries waiting ${retries}`,
    `validation attempts: ${attempts.map((a) => `${a.tenant_id} ×${a.attempts} ${a.last_error_code ?? ''} last ${a.last_attempt_at.toISOString().slice(11, 19)}${a.parked_at ? ' PARKED' : ''}`).join('; ') || 'none'}`,
  ].join('; ');
}

async function phase(stack: Stack, name: string, fault: string, body: (p: PhaseRecord) => Promise<void>, recoveryTimeoutMs: number): Promise<void> {
  const p: PhaseRecord = {
    name,
    fault,
    startedAt: Date.now(),
    liftedAt: 0,
    endedAt: 0,
    notes: [],
    counters: { retried: -stack.metrics.total('retry'), parked: -stack.metrics.total('parked'), retryCopies: -stack.tap.counts.retryCopies, parkedCopies: -stack.tap.counts.parkedCopies },
  };
  stack.driver.phase = name;
  stack.scanner.phase = name;
  say(`── ${name}: ${fault}`);
  try {
    await body(p);
  } catch (error) {
    p.notes.push(`phase failed: ${(error as Error).message}`);
    stack.failures.push(`${name}: ${(error as Error).message}`);
  }
  if (!p.liftedAt) p.liftedAt = Date.now();
  await awaitRecovery(stack, p, recoveryTimeoutMs);
  await stack.metrics.scrapeAll();
  p.endedAt = Date.now();
  p.counters.retried += stack.metrics.total('retry');
  p.counters.parked += stack.metrics.total('parked');
  p.counters.retryCopies += stack.tap.counts.retryCopies;
  p.counters.parkedCopies += stack.tap.counts.parkedCopies;
  say(`   ${p.recoveredAt ? `recovered ${((p.recoveredAt - p.liftedAt) / 1000).toFixed(1)} s after the fault was lifted` : 'NOT recovered'}${p.notes.length ? `; ${p.notes.join('; ')}` : ''}`);
  stack.phases.push(p);
}

/** Events waiting for a delayed retry: in the broker's delay queues, or in Postgres when retries are scheduled there. */
async function delayedRetriesWaiting(stack: Stack): Promise<number> {
  const inQueues = (await stack.view.queues()).filter((q) => q.name.includes('.retry.')).reduce((sum, q) => sum + q.messages, 0);
  const [table] = await stack.db.query<{ t: string | null }>(`SELECT to_regclass('scheduled_retries')::text AS t`);
  const inDb = table.t ? Number((await stack.db.query<{ n: string }>('SELECT count(*) AS n FROM scheduled_retries'))[0].n) : 0;
  return inQueues + inDb;
}

/** Tenants connected and active before a fault (so faults hit replacements, compromises, …). */
async function activeTenants(stack: Stack, n: number, story: string): Promise<{ t: TenantPlan; key: IssuedKey }[]> {
  if (stack.pool.length >= n) {
    const taken = stack.pool.splice(0, n);
    for (const { t } of taken) {
      t.phase = stack.driver.phase;
      t.story = `${t.story} (earlier)${story === 'submit' ? '' : ` ; ${story}`}`;
    }
    return taken;
  }
  const made = await Promise.all(Array.from({ length: n }, () => stack.driver.connectTenant(story)));
  await Promise.all(made.map(({ t }) => stack.driver.waitForStatus(t, 'active')));
  return made;
}

/**
 * A connection of the suite's own (to hold locks). A step that fails leaves it open; at the end
 * the cluster is shut down under it, which must not crash the suite before it reports.
 */
async function observerClient(stack: Stack): Promise<Client> {
  const client = new Client({ connectionString: stack.dbUrl, application_name: 'keyward-chaos-locks' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Holds a tenant's current-key lock from outside, as a slow transaction of rotation would: the
 * next activation of that tenant waits inside its handler, its delivery unacknowledged.
 */
async function holdCurrentKeyLock(client: Client, tenantId: string): Promise<void> {
  const lock = LOCKS.currentKey(tenantId);
  await client.query('SELECT pg_advisory_lock(hashtextextended($1, $2))', [lock.name, lock.namespace]);
}

/**
 * Locks the tenants' health rows from outside, as a slow transaction would: the monitor's handling
 * of their auth.failed waits on them, its deliveries unacknowledged. `release` commits and closes.
 */
async function lockHealthRows(stack: Stack, tenantIds: string[]): Promise<{ release: () => Promise<void> }> {
  const client = await observerClient(stack);
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM connection_health WHERE tenant_id = ANY($1) FOR UPDATE', [tenantIds]);
  return {
    release: async () => {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

async function parallel<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
}

/** Evidence that a process holds unacknowledged deliveries, from the broker's own channel table. */
async function waitForWorkInFlight(stack: Stack, candidates: ServiceProcess[], timeoutMs = 20_000): Promise<{ victim: ServiceProcess; unacked: number }> {
  const deadline = Date.now() + timeoutMs;
  let looks = 0;
  let lastSeen = 'nothing (rabbitmqctl failed every time)';
  while (Date.now() < deadline) {
    // rabbitmqctl can fail or time out on a loaded machine: ask again rather than give up.
    const byPid = await stack.view.unackedByPid().catch(() => undefined);
    looks += 1;
    if (byPid) {
      lastSeen = byPid.size ? [...byPid].map(([pid, unacked]) => `pid ${pid}: ${unacked}`).join(', ') : 'no unacknowledged deliveries';
      for (const c of candidates) {
        const unacked = c.pid ? (byPid.get(c.pid) ?? 0) : 0;
        if (unacked > 0) return { victim: c, unacked };
      }
    }
    await sleep(200);
  }
  const watched = candidates.map((c) => `${c.name} pid ${c.pid ?? '–'}`).join(', ');
  throw new Error(`no ${candidates[0].service} replica held a delivery within ${timeoutMs} ms (${looks} looks at the broker; watched ${watched}; last seen ${lastSeen})`);
}

/** The replica of `service` the broker shows holding unacknowledged deliveries, noted in the phase: the one to stop. */
async function holderOf(stack: Stack, p: PhaseRecord, service: ServiceName): Promise<ServiceProcess> {
  const { victim, unacked } = await waitForWorkInFlight(stack, replicas(stack, service));
  p.notes.push(`${victim.name} held ${unacked} unacked at SIGTERM`);
  return victim;
}

async function restartReplica(_stack: Stack, p: PhaseRecord, s: ServiceProcess): Promise<void> {
  await s.start(180_000);
  p.notes.push(`${s.name} restarted`);
}

function checkGracefulExit(stack: Stack, p: PhaseRecord, s: ServiceProcess, exit: ExitRecord): void {
  const ok = exit.code === 0 && exit.afterMs <= SHUTDOWN_DEADLINE_MS;
  p.notes.push(`${s.name} SIGTERM → exit ${exit.code ?? exit.signal} in ${(exit.afterMs / 1000).toFixed(1)} s`);
  if (!ok) stack.failures.push(`${p.name}: ${s.name} did not exit 0 within ${SHUTDOWN_DEADLINE_MS / 1000} s after SIGTERM (exit ${exit.code ?? exit.signal}, ${exit.afterMs} ms)`);
}

async function runPhases(stack: Stack, profile: Profile, round: number): Promise<void> {
  const d = stack.driver;
  const n = (x: number) => Math.max(1, Math.round(x * profile.scale));
  const tag = (name: string) => (profile.rounds > 1 ? `${name} #${round}` : name);

  await phase(
    stack,
    tag('baseline lifecycle'),
    'none (submit, replace, wrong company, compromise, uninstall, revoked key noticed by probes)',
    async () => {
      const reserve = n(6) + n(5) + 6 + 4 + n(4) + (stack.emulator ? n(4) : 0) + 7;
      const tenants = await activeTenants(stack, n(30) + reserve, 'submit');
      stack.pool.push(...tenants.splice(n(30)));
      const [replace, wrong, compromise, uninstall, probe] = [
        tenants.slice(0, n(8)),
        tenants.slice(n(8), n(12)),
        tenants.slice(n(12), n(16)),
        tenants.slice(n(16), n(19)),
        tenants.slice(n(19), n(19) + 2),
      ];
      await Promise.all([
        ...replace.map(({ t }) => d.replace(t)),
        ...wrong.map(({ t }) => d.wrongCompany(t)),
        ...compromise.map(async ({ t }, i) => {
          await d.compromise(t);
          if (i % 2 === 0) {
            await d.waitForStatus(t, 'disabled');
            await d.reconnect(t);
            // intake shows the connection disabled as soon as the report is answered; when rotation
            // decides the new key before it handles the report, the connection never loses a key
            // in service and no reconnection alert is due, by design (as in the races phase).
            t.alerts -= 1;
            t.maybeAlerts += 1;
          }
        }),
        ...uninstall.map(({ t }) => d.uninstall(t)),
        ...probe.map(async ({ t, key }) => {
          await d.revokeInPleo(t, key);
          // Noticed within a probe interval or two; judged with everything else at the end, so no phase waits for it.
          t.phase = PROBE_PHASE;
          stack.probeDeadline ??= Date.now() + 2 * profile.probeIntervalHours * 3_600_000 + 30_000;
        }),
      ]);
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('broker restart during delayed retries'),
    `Pleo answers 503 until submissions wait in delayed retries, then rabbitmqctl stop_app / ${profile.brokerRestartDownMs / 1000} s / start_app (Pleo healthy again meanwhile)`,
    async (p) => {
      const retriedBefore = stack.metrics.total('retry');
      await d.fault({ status: 503 });
      const count = n(20);
      await parallel(count, () => d.connectTenant('submit while Pleo answers 503'));
      const deadline = Date.now() + 60_000;
      let waiting = 0;
      let retried = 0;
      while (Date.now() < deadline) {
        await stack.metrics.scrapeAll();
        retried = stack.metrics.total('retry') - retriedBefore;
        waiting = await delayedRetriesWaiting(stack);
        // Stop as soon as half wait: the longer Pleo fails, the later a tier brings them back.
        if (waiting >= Math.ceil(count / 2)) break;
        await sleep(250);
      }
      p.notes.push(`${retried} retries scheduled; ${waiting} events waiting in delayed retries at the stop`);
      if (waiting === 0) stack.failures.push(`${p.name}: no event was waiting in a delayed retry when the broker stopped; the fault did not happen`);
      await stack.broker.stop();
      await d.clearFault();
      await sleep(profile.brokerRestartDownMs);
      await stack.broker.start();
      await stack.tap.afterBrokerStart();
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('broker gone'),
    `rabbitmqctl stop_app for ${profile.brokerOutageMs / 1000} s while tenants submit, compromise and uninstall; Pleo 429 storm as it returns`,
    async (p) => {
      const ready = await activeTenants(stack, n(6), 'submit');
      await stack.broker.stop();
      const outageEnds = Date.now() + profile.brokerOutageMs;
      const accepted = await parallel(n(15), () => d.connectTenant('submit while the broker is down'));
      await Promise.all([...ready.slice(0, n(3)).map(({ t }) => d.compromise(t)), ...ready.slice(n(3), n(5)).map(({ t }) => d.uninstall(t))]);
      p.notes.push(`intake accepted ${accepted.length} submissions while the broker was down`);
      await sleep(Math.max(0, outageEnds - Date.now() - 1_000));
      await d.fault({ status: 429, count: n(15), retryAfterSeconds: 1 });
      await sleep(Math.max(0, outageEnds - Date.now()));
      await stack.broker.start();
      await stack.tap.afterBrokerStart();
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('Postgres restart and terminated backends'),
    'pg_ctl stop -m fast / 3 s / start while submitting, then pg_terminate_backend of every keyward connection',
    async (p) => {
      const ready = await activeTenants(stack, n(5), 'submit');
      const during = parallel(n(15), () => d.connectTenant('submit across a Postgres restart'));
      await sleep(300);
      const statusesBefore = new Map(d.answersByStatus);
      await stack.pg.stop();
      const probe = await d.intake('GET', `/v1/tenants/${ready[0].t.id}/pleo/connection`);
      const refusal = problemCode(probe.body);
      p.notes.push(`intake with Postgres down answered ${probe.status} ${refusal ?? ''}`.trim());
      if (probe.status !== 503 || !refusal) stack.failures.push(`${p.name}: intake answered ${probe.status} without an error code while Postgres was down`);
      const readiness = await fetch(`${replicas(stack, 'validator')[0].url}/health/ready`)
        .then((r) => r.status)
        .catch(() => 0);
      p.notes.push(`validator /health/ready ${readiness} while Postgres was down`);
      if (readiness !== 503) stack.failures.push(`${p.name}: /health/ready answered ${readiness}, not 503, while Postgres was down`);
      await sleep(3_000);
      await stack.pg.start();
      await during;
      const fiveHundreds = [...d.answersByStatus].filter(([s]) => s >= 500).reduce((sum, [s, c]) => sum + c - (statusesBefore.get(s) ?? 0), 0);
      p.notes.push(`${fiveHundreds} intake answers were 5xx during the restart (callers retried)`);
      await Promise.all([...ready.slice(0, n(2)).map(({ t }) => d.replace(t)), parallel(n(5), () => d.connectTenant('submit across terminated backends'))]);
      const terminated = await stack.pg.terminateBackends('keyward_chaos');
      p.notes.push(`terminated ${terminated} backends`);
      await Promise.all([...ready.slice(n(2), n(4)).map(({ t }) => d.compromise(t)), parallel(n(5), () => d.connectTenant('submit after terminated backends'))]);
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('SIGKILL with work in flight'),
    'each worker killed while the broker shows it holding unacknowledged deliveries, then restarted',
    async (p) => {
      // validator: Pleo answers after 15 s, so introspections hang with their deliveries unacked.
      await d.fault({ delayMs: 15_000, durationMs: 16_000 });
      await parallel(4, () => d.connectTenant('submit; validator killed mid-validation'));
      let { victim, unacked } = await waitForWorkInFlight(stack, replicas(stack, 'validator'));
      p.notes.push(`${victim.name} (pid ${victim.pid}) held ${unacked} unacked → SIGKILL`);
      await victim.stop('SIGKILL');
      await d.clearFault();
      await restartReplica(stack, p, victim);

      // rotation: the tenants' rotation lock is held by the suite, so the activation waits inside the handler.
      const held = await activeTenants(stack, 3, 'submit');
      const locker = await observerClient(stack);
      for (const { t } of held) await holdCurrentKeyLock(locker, t.id);
      await Promise.all(held.map(({ t }) => d.replace(t)));
      ({ victim, unacked } = await waitForWorkInFlight(stack, replicas(stack, 'rotation')));
      p.notes.push(`${victim.name} (pid ${victim.pid}) held ${unacked} unacked → SIGKILL`);
      await victim.stop('SIGKILL');
      await locker.end();
      await restartReplica(stack, p, victim);

      // monitor: the tenants' health rows are locked, so auth.failed handling waits on them.
      const watched = await activeTenants(stack, 3, 'submit; one auth.failed while the monitor is killed');
      await sleep(1_000);
      const rowLock = await lockHealthRows(
        stack,
        watched.map(({ t }) => t.id),
      );
      for (const { t, key } of watched) await d.publishAuthFailures(t, d.credentialOf(t, key.last4), 1);
      ({ victim, unacked } = await waitForWorkInFlight(stack, replicas(stack, 'monitor')));
      p.notes.push(`${victim.name} (pid ${victim.pid}) held ${unacked} unacked → SIGKILL`);
      await victim.stop('SIGKILL');
      await rowLock.release();
      await restartReplica(stack, p, victim);
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('SIGTERM while busy'),
    'one replica of each service gets SIGTERM with work in hand: exit 0 within 25 s, nothing lost',
    async (p) => {
      for (const service of ['validator', 'rotation', 'monitor', 'intake', 'gateway'] as const) {
        let victim = replicas(stack, service)[round % 2] ?? replicas(stack, service)[0];
        if (!victim) continue;
        let busy: Promise<unknown>;
        if (service === 'validator') {
          // Four submissions at least, so each replica gets some; the one the broker shows holding work is stopped.
          await d.fault({ delayMs: 10_000, durationMs: 11_000 });
          busy = parallel(Math.max(4, n(4)), () => d.connectTenant('submit; validator stopped while validating'));
          victim = await holderOf(stack, p, 'validator');
        } else if (service === 'rotation') {
          const held = await activeTenants(stack, 2, 'submit');
          const locker = await observerClient(stack);
          for (const { t } of held) await holdCurrentKeyLock(locker, t.id);
          await Promise.all(held.map(({ t }) => d.replace(t)));
          victim = await holderOf(stack, p, 'rotation');
          // The lock is released a moment after SIGTERM: the replica must finish that work, not drop it.
          busy = sleep(1_000).then(() => locker.end());
        } else if (service === 'monitor') {
          // The tenants' health rows are locked, so the replica that takes their auth.failed waits with it in hand.
          const watched = await activeTenants(stack, 2, 'submit; one auth.failed while the monitor stops');
          await sleep(1_000);
          const rowLock = await lockHealthRows(
            stack,
            watched.map(({ t }) => t.id),
          );
          for (const { t, key } of watched) await d.publishAuthFailures(t, d.credentialOf(t, key.last4), 1);
          victim = await holderOf(stack, p, 'monitor');
          busy = sleep(1_000).then(() => rowLock.release());
        } else if (service === 'gateway') {
          // Pleo answers after 2 s, so both replicas hold calls when one is stopped; each call must still be answered 200.
          const callers = await activeTenants(stack, 2, 'submit; calls through the gateway while it stops');
          await d.fault({ delayMs: 2_000, durationMs: 2_500 });
          busy = Promise.all(callers.map(({ t }) => d.callThroughGateway(t, 3))).then((statuses) => {
            const refused = statuses.flat().filter((status) => status !== 200);
            if (refused.length > 0) stack.failures.push(`${p.name}: calls through the gateway while ${victim.name} stopped were answered ${refused.join(', ')}, not 200`);
            p.notes.push(`${statuses.flat().length} calls through the gateway answered`);
          });
          await sleep(300);
        } else {
          busy = parallel(n(6), () => d.connectTenant(`submit while ${service} stops`, 2));
          await sleep(200);
        }
        const exit = await victim.stop('SIGTERM');
        checkGracefulExit(stack, p, victim, exit);
        await busy;
        await restartReplica(stack, p, victim);
      }
      await d.clearFault();
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  await phase(
    stack,
    tag('Pleo slow, 5xx, 429 storm, outage'),
    'sandbox: 2.5 s latency, then 500s, then a 429 storm, then 503 for 6 s',
    async (p) => {
      const ready = await activeTenants(stack, n(4), 'submit');
      await d.fault({ delayMs: 2_500, durationMs: 5_000 });
      await parallel(n(8), () => d.connectTenant('submit while Pleo is slow'));
      await sleep(3_000);
      await d.fault({ status: 500, count: n(25) });
      await parallel(n(6), () => d.connectTenant('submit while Pleo answers 500'));
      await sleep(2_000);
      await d.fault({ status: 429, count: n(60), retryAfterSeconds: 1 });
      await parallel(n(6), () => d.connectTenant('submit in a 429 storm'));
      await sleep(2_000);
      await d.fault({ status: 503, durationMs: 6_000 });
      await parallel(n(8), () => d.connectTenant('submit while Pleo is down'));
      await Promise.all(ready.slice(0, n(2)).map(({ t }) => d.compromise(t)));
      await sleep(6_000);
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );

  const emulator = stack.emulator;
  if (emulator) {
    await phase(
      stack,
      tag('secret backend throttling, then unavailable'),
      'Secrets Manager answers ThrottlingException to every operation, then 500 InternalServiceError for 6 s',
      async (p) => {
        const ready = await activeTenants(stack, n(4), 'submit');
        for (const op of SECRET_OPERATIONS) emulator.failNext(op, 'ThrottlingException', 400, n(12));
        await Promise.all([parallel(n(6), () => d.connectTenant('submit while Secrets Manager throttles')), ...ready.slice(0, n(2)).map(({ t }) => d.replace(t))]);
        for (const op of SECRET_OPERATIONS) emulator.failNext(op, 'InternalServiceError', 500, 1_000_000);
        const unavailable = Promise.all([parallel(n(6), () => d.connectTenant('submit while Secrets Manager is down')), ...ready.slice(n(2), n(4)).map(({ t }) => d.compromise(t))]);
        await sleep(6_000);
        emulator.clearFaults();
        await unavailable;
        const refused = [...d.answersByStatus].filter(([s]) => s === 503).reduce((sum, [, c]) => sum + c, 0);
        p.notes.push(`intake answered 503 ${refused} times so far in the run (callers retried)`);
        p.liftedAt = Date.now();
      },
      profile.recoveryTimeoutMs,
    );
  }

  await phase(
    stack,
    tag('races'),
    'concurrent submissions for one tenant, compromise during validation, uninstall during activation, monitor replicas on one auth.failed burst',
    async (p) => {
      // Concurrent submissions: several keys of one company at once; one of them ends active.
      await parallel(n(4), async () => {
        const t = d.newTenant('concurrent submissions');
        const first = await d.issueKey();
        t.companyId = first.companyId;
        const keys = [first, ...(await parallel(3, () => d.issueKey({ companyId: first.companyId })))];
        await Promise.all(keys.map((k) => d.submit(t, k, { activated: 'maybe', invalidated: 'maybe' })));
        t.expected = { status: 'active', last4: keys.map((k) => k.last4) };
      });

      // Compromise during validation: the replacement's introspection takes 3 s; the compromise lands meanwhile.
      const victims = await activeTenants(stack, 3, 'submit');
      await d.fault({ delayMs: 3_000, durationMs: 4_000 });
      await Promise.all(
        victims.map(async ({ t }) => {
          const submittedAt = Date.now();
          const old = t.expected.last4![0];
          const next = await d.issueKey({ companyId: t.companyId });
          await d.submit(t, next, { activated: true, invalidated: null });
          await d.compromise(t);
          const answeredAt = t.compromised[t.compromised.length - 1].answeredAt;
          // The compromised key was active when reported; the new key validates afterwards and is the tenant's key.
          t.expected = { status: 'active', last4: [next.last4] };
          // By the time the monitor handles the disable, the replacement may already be active: then no alert, by design.
          t.alerts -= 1;
          t.maybeAlerts += 1;
          t.story = `submit → replacement validating → compromise of …${old} → replacement active`;
          if (answeredAt - submittedAt > 2_500) p.notes.push(`compromise of ${t.id} answered only after ${answeredAt - submittedAt} ms; the race may not have happened`);
        }),
      );

      // Uninstall during activation: validated, while rotation waits on the tenant's lock.
      await parallel(3, async () => {
        const locker = await observerClient(stack);
        const t = d.newTenant('submit → validated → uninstall while rotation activates');
        const key = await d.issueKey();
        t.companyId = key.companyId;
        await holdCurrentKeyLock(locker, t.id);
        // The activation waits on the lock ahead of the uninstall, so it may commit first: then the uninstall must invalidate it.
        const credentialId = await d.submit(t, key, { activated: 'maybe', invalidated: 'maybe' });
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const rows = await stack.db.query(`SELECT 1 FROM outbox WHERE event_type = 'key.validated' AND payload->'data'->>'credentialId' = $1`, [credentialId]);
          if (rows.length) break;
          await sleep(200);
        }
        // Intake's uninstall takes the same lock: it waits with the activation, and both go once the lock is free.
        const uninstalled = d.uninstall(t);
        await sleep(500);
        const lock = LOCKS.currentKey(t.id);
        await locker.query('SELECT pg_advisory_unlock(hashtextextended($1, $2))', [lock.name, lock.namespace]);
        await uninstalled;
        await locker.end();
      });

      // Monitor replicas racing on one burst of auth failures for a revoked key: one alert per tenant.
      const revoked = await activeTenants(stack, 4, 'submit');
      await Promise.all(
        revoked.map(async ({ t, key }) => {
          await d.revokeInPleo(t, key);
          if (replicas(stack, 'gateway').length) {
            const statuses = await d.callThroughGateway(t, 12);
            t.story += ` → 12 gateway calls (${[...new Set(statuses)].join('/')})`;
          } else {
            await d.publishAuthFailures(t, d.credentialOf(t, key.last4), 12);
            t.story += ' → burst of 12 auth.failed';
          }
        }),
      );
      p.liftedAt = Date.now();
    },
    profile.recoveryTimeoutMs,
  );
}

/** A short run can end before the probes came round to the keys revoked in Pleo alone: wait for them, up to two intervals. */
async function awaitProbes(stack: Stack): Promise<void> {
  const watched = [...stack.driver.tenants.values()].filter((t) => t.phase === PROBE_PHASE);
  while (stack.probeDeadline && Date.now() < stack.probeDeadline) {
    const states = await Promise.all(watched.map(async (t) => (await stack.driver.connection(t))?.status === t.expected.status));
    if (states.every(Boolean)) return;
    say(`Waiting for the probes to notice ${states.filter((ok) => !ok).length} key(s) revoked in Pleo…`);
    await sleep(5_000);
  }
}

async function quiesce(stack: Stack, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let busy: string[] = [];
  while (Date.now() < deadline) {
    const queues = await stack.view.queues().catch(() => []);
    busy = queues.filter((q) => !q.name.endsWith('.notifications') && q.name !== 'chaos.firehose' && (q.messages > 0 || q.unacked > 0)).map((q) => `${q.name}=${q.messages}+${q.unacked}`);
    const backlog = await outboxBacklog(stack);
    if (backlog) busy.push(`outbox=${backlog}`);
    if (!busy.length) return [];
    await sleep(1_000);
  }
  return busy;
}

async function main(): Promise<void> {
  const profile = { ...(process.argv.includes('--long') ? PROFILES.long : PROFILES.short), backend: process.argv.includes('--aws') ? ('aws' as const) : ('local' as const) };
  const started = Date.now();
  say(`keyward chaos suite, ${profile.name} profile, ${profile.backend} secret backend`);
  const stack = await startStack(profile);
  let code: number;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      stack.metrics.stop();
      stack.pleo.stop();
      stack.retryRows.stop();
      await stack.tap.stop();
      await stack.db.close();
      await Promise.all([...stack.services, stack.sandbox].map((s) => s.stop('SIGKILL', 1_000)));
      await stack.broker.shutdown().catch(() => undefined);
      await stack.pg.shutdown().catch(() => undefined);
      await stack.emulator?.stop().catch(() => undefined);
      // Every process's output, for the person reading a failed run (searched for keys above).
      const logDir = join(tmpdir(), `keyward-chaos-logs-${started}`);
      mkdirSync(logDir, { recursive: true });
      for (const s of [...stack.services, stack.sandbox]) writeFileSync(join(logDir, `${s.name}.log`), s.text());
      say(`Process logs: ${logDir}`);
    })());
  // Interrupted (Ctrl-C, a CI timeout): no private node or service process outlives the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  try {
    const scannerKey = await stack.driver.issueKey();
    stack.scanner.selfTest(scannerKey.apiKey);
    let round = 1;
    do {
      await runPhases(stack, profile, round);
      round += 1;
    } while (round <= profile.rounds || Date.now() - started < profile.minDurationMs);

    stack.scanner.phase = 'end';
    say('Waiting for every queue and the outbox to drain…');
    const busy = await quiesce(stack, 60_000);
    if (busy.length) stack.failures.push(`not drained after 60 s: ${busy.join(', ')}`);
    await awaitProbes(stack);
    const parkedNow = (await stack.view.queues()).filter((q) => q.name.endsWith('.parked')).reduce((sum, q) => sum + q.messages, 0);
    await stack.metrics.scrapeAll();
    let findings: Findings = await judge(stack.db, stack.driver, stack.pleo);
    // Probes keep running: an event committed between the drain and the judgement is in flight, not lost.
    // Look again after the writer's grace and a relay poll; an event truly lost is still missing then.
    for (let look = 2; look <= 3 && (findings.lostEvents.length > 0 || findings.unpublished > 0); look++) {
      say(`${findings.lostEvents.length} event(s) not consumed and ${findings.unpublished} outbox row(s) not published yet; looking again (look ${look} of 3)…`);
      await sleep(7_000);
      await quiesce(stack, 60_000);
      findings = await judge(stack.db, stack.driver, stack.pleo);
    }

    say('Stopping every service with SIGTERM…');
    for (const s of stack.services) {
      const exit = await s.stop('SIGTERM');
      if (exit.code !== 0) stack.failures.push(`${s.name} exited ${exit.code ?? exit.signal} at the final SIGTERM`);
    }
    await stack.sandbox.stop();
    for (const s of [...stack.services, stack.sandbox]) {
      for (const crash of s.crashes) stack.failures.push(`${s.name} died on its own (exit ${crash.code ?? crash.signal}, ${(crash.afterMs / 1000).toFixed(0)} s after a start): see its log`);
    }
    for (const s of [...stack.services, stack.sandbox]) stack.scanner.scan(`process output (${s.service})`, s.text());
    stack.scanner.scan('database dump (pg_dump, all but the sealed secret_versions rows)', await pgDump(stack.dbUrl));

    code = await printReport({ stack, profile, findings, parkedNow, durationMs: Date.now() - started, byPhase: tenantsByPhase(stack.driver, findings), say });
  } finally {
    await cleanup();
  }
  process.exit(code);
}

export type { Stack };

main().catch((error: unknown) => {
  process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? String(error)) : String(error)}\n`);
  process.exit(2);
});
