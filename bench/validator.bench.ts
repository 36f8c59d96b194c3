import { randomBytes, randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { NestFactory } from '@nestjs/core';
import { connect } from 'amqplib';
import { DataSource } from 'typeorm';
import { attachEventServer, ServiceDefinition, serviceRootModule } from '@keyward/bootstrap';
import { loadConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { ApiKey } from '@keyward/key-material';
import { AmqpConnection, deleteTopology } from '@keyward/messaging';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { BENCH_AMQP_URL, runBenchmark, withBenchDatabase } from './bench-database';
import { PleoClient } from '@keyward/pleo';
import { SECRET_STORE, SecretStore } from '@keyward/secrets';
import { startPleoSandbox } from '../apps/pleo-sandbox/start-pleo-sandbox';
import { validationRetryPolicy } from '../apps/validator/validation-retry-policy';
import { ValidatorModule } from '../apps/validator/validator.module';

/**
 * npm run bench:validator [-- SUBMISSIONS CALLS]
 * 1. Validations per second through the validator service (RabbitMQ → handler → secret store →
 *    Pleo sandbox over HTTP → outbox), with zero injected latency.
 * 2. The Pleo client's own cost per call (breaker, Retry-After gate, metrics, parsing) against a
 *    bare `fetch` of the same endpoint with the same key, same run. Localhost only, bounded.
 */
const SUBMISSIONS = Math.min(Number(process.argv[2] ?? 500), 5_000);
const CALLS = Math.min(Number(process.argv[3] ?? 2_000), 20_000);

const AMQP = BENCH_AMQP_URL;

const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;

async function validationsPerSecond(databaseUrl: string, sandboxUrl: string, issueKey: () => string): Promise<number> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const config = loadConfig('validator', {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    AMQP_URL: AMQP,
    KEYWARD_AMQP_PREFIX: prefix,
    KEYWARD_MASTER_KEY: randomBytes(32).toString('base64'),
    PLEO_API_BASE_URL: sandboxUrl,
    PLEO_REQUIRED_SCOPES: 'accounts:read export-jobs:write',
    LOG_LEVEL: 'warn',
  });
  const logger = KeywardLogger.create('validator', 'warn');
  const definition: ServiceDefinition = { module: ValidatorModule.forRoot(), consumes: 'validator', retry: validationRetryPolicy(config) };
  const app = await NestFactory.create(serviceRootModule(definition, config, logger), { logger: false });
  await app.init();
  await attachEventServer(app, definition, config);
  const store = app.get<SecretStore>(SECRET_STORE);
  const dataSource = app.get(DataSource);

  try {
    // Arrange as intake would: a pending secret version and a submission row per tenant.
    const events = [];
    for (let i = 0; i < SUBMISSIONS; i++) {
      const tenantId = `bench-${i}-${randomBytes(3).toString('hex')}`;
      const key = ApiKey.fromTrusted(issueKey());
      const submissionId = randomUUID();
      const credentialId = randomUUID();
      await store.putPending(tenantId, credentialId, key);
      await dataSource.query(
        `INSERT INTO submissions (id, tenant_id, credential_id, secret_version_id, last4, fingerprint, replacing, submitted_by, correlation_id)
         VALUES ($1, $2, $3::uuid, $3::text, $4, $5, false, 'bench', $6)`,
        [submissionId, tenantId, credentialId, key.last4, key.fingerprint(config.secrets.fingerprintPepper), `bench-${submissionId}`],
      );
      events.push(
        createEvent(
          'key.submitted',
          { tenantId, correlationId: `bench-${submissionId}`, producer: 'intake' },
          { submissionId, credentialId, secretVersionId: credentialId, last4: key.last4, replacing: false },
        ),
      );
    }

    const connection = await connect(AMQP);
    const channel = await connection.createConfirmChannel();
    const exchange = app.get(AmqpConnection).names.exchange;
    const started = process.hrtime.bigint();
    for (const event of events) {
      channel.publish(exchange, event.type, Buffer.from(JSON.stringify(event)), { persistent: true, contentType: 'application/json', messageId: event.id, type: event.type });
    }
    await channel.waitForConfirms();
    await connection.close();

    const deadline = Date.now() + 300_000;
    let decided = 0;
    while (decided < SUBMISSIONS) {
      if (Date.now() > deadline) throw new Error(`only ${decided} of ${SUBMISSIONS} validated within 5 minutes`);
      await new Promise((r) => setTimeout(r, 20));
      const [row] = await dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM outbox WHERE event_type IN ('key.validated', 'key.rejected')`);
      decided = row.n;
    }
    const elapsed = seconds(started);
    const [rejected] = await dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM outbox WHERE event_type = 'key.rejected'`);
    if (rejected.n > 0) throw new Error(`${rejected.n} submissions were rejected; the bench expects every key to be valid`);
    process.stdout.write(`  (${SUBMISSIONS} submissions validated in ${elapsed.toFixed(2)} s, prefetch ${config.amqp.prefetch})\n`);
    return SUBMISSIONS / elapsed;
  } finally {
    const channel = await (app.get(AmqpConnection).current as NonNullable<AmqpConnection['current']>).createChannel();
    await app.close();
    await deleteTopology(channel, app.get(AmqpConnection).names).catch(() => undefined);
  }
}

interface CallStats {
  meanUs: number;
  p50Us: number;
  p99Us: number;
}

function stats(samples: number[]): CallStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { meanUs: mean, p50Us: sorted[Math.floor(sorted.length / 2)], p99Us: sorted[Math.floor(sorted.length * 0.99)] };
}

/** Same endpoint, same key, alternating blocks so machine noise hits both sides alike. */
async function clientOverhead(sandboxUrl: string, apiKey: string): Promise<{ client: CallStats; fetch: CallStats }> {
  const pleo = new PleoClient({ baseUrl: sandboxUrl, timeoutMs: 5_000, connectTimeoutMs: 2_000, allowOrganizationKeys: false, metrics: new Metrics('bench') });
  const key = ApiKey.fromTrusted(apiKey);
  const authorization = `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`;
  const viaClient = async () => {
    const result = await pleo.introspect(key);
    if (result.outcome !== 'valid') throw new Error(`client call failed: ${result.outcome}`);
  };
  const viaFetch = async () => {
    const res = await fetch(`${sandboxUrl}/v1/introspect`, { headers: { authorization, accept: 'application/json' } });
    const body = (await res.json()) as { data?: unknown };
    if (res.status !== 200 || !body.data) throw new Error(`fetch failed: ${res.status}`);
  };
  for (let i = 0; i < 200; i++) {
    await viaClient();
    await viaFetch();
  }
  const clientSamples: number[] = [];
  const fetchSamples: number[] = [];
  const block = 100;
  for (let done = 0; done < CALLS; done += block) {
    for (const [run, samples] of [
      [viaClient, clientSamples],
      [viaFetch, fetchSamples],
    ] as const) {
      for (let i = 0; i < block; i++) {
        const t = process.hrtime.bigint();
        await run();
        samples.push(Number(process.hrtime.bigint() - t) / 1e3);
      }
    }
  }
  await pleo.close();
  return { client: stats(clientSamples), fetch: stats(fetchSamples) };
}

async function main(): Promise<void> {
  const sandbox = await startPleoSandbox({ port: 0, host: '127.0.0.1' });
  await withBenchDatabase('validator', async (url) => {
    process.stdout.write(`bench:validator — ${SUBMISSIONS} submissions, ${CALLS} calls per side, ${cpus().length} cores, Node ${process.version}, sandbox with no injected latency\n`);
    const issue = () => sandbox.state.issueKey({}).apiKey;
    const rate = await validationsPerSecond(url, sandbox.url, issue);
    const overhead = await clientOverhead(sandbox.url, issue());
    const f = (n: number) => `${n.toFixed(0)} µs`;
    process.stdout.write(`validations through the validator service          : ${rate.toFixed(1)} /s\n`);
    process.stdout.write(`PleoClient.introspect per call  mean/p50/p99          : ${f(overhead.client.meanUs)} / ${f(overhead.client.p50Us)} / ${f(overhead.client.p99Us)}\n`);
    process.stdout.write(`bare fetch /v1/introspect per call  mean/p50/p99      : ${f(overhead.fetch.meanUs)} / ${f(overhead.fetch.p50Us)} / ${f(overhead.fetch.p99Us)}\n`);
    // The median is the steadier figure on a shared machine; the mean carries the outliers.
    process.stdout.write(`client overhead per call (p50 / mean)                : ${f(overhead.client.p50Us - overhead.fetch.p50Us)} / ${f(overhead.client.meanUs - overhead.fetch.meanUs)}\n`);
    process.stdout.write(
      `ratio client/fetch (p50 / mean)                      : ${(overhead.client.p50Us / overhead.fetch.p50Us).toFixed(2)} / ${(overhead.client.meanUs / overhead.fetch.meanUs).toFixed(2)}\n`,
    );
  }).finally(() => sandbox.close());
}

runBenchmark('validator', main);
