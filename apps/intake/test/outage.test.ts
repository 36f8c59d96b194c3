import { INestApplication } from '@nestjs/common';
import { connect } from 'amqplib';
import request from 'supertest';
import { TopologyNames } from '@keyward/messaging';
import {
  canaryKey,
  captureLogs,
  createTestDatabase,
  eventually,
  PrivateBroker,
  PrivatePostgres,
  startPrivateBroker,
  startPrivatePostgres,
  startTestService,
  TestDatabase,
  testConfig,
  testPrefix,
} from '@keyward/testing';
import { intakeService } from '../intake.definition';
import { newTenant, SERVICE } from './intake-harness';

/**
 * Intake while its dependencies go away, on a broker and a Postgres of the test's own: the broker
 * down does not stop submissions (the outbox keeps them); Postgres down is a clear 503 that keeps
 * nothing; readiness follows both.
 */
jest.setTimeout(300_000);

const submit = (app: INestApplication, tenantId: string) =>
  request(app.getHttpServer())
    .put(`/v1/tenants/${tenantId}/pleo/key`)
    .set('Authorization', SERVICE)
    .send({ apiKey: canaryKey('outage') });
const ready = async (app: INestApplication) => (await request(app.getHttpServer()).get('/health/ready')).status;

describe('intake while RabbitMQ is down', () => {
  let broker: PrivateBroker;
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;

  beforeAll(async () => {
    broker = await startPrivateBroker({ name: 'kwintake' });
    db = await createTestDatabase();
    prefix = testPrefix();
    const config = testConfig('intake', { databaseUrl: db.url, prefix, AMQP_URL: broker.url });
    app = await startTestService(intakeService(config), config, captureLogs('intake').logger);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await broker?.shutdown();
  });

  it('keeps accepting submissions, reports not ready, and publishes them all once the broker is back', async () => {
    expect(await ready(app)).toBe(200);
    await broker.stop();
    await eventually(async () => (await ready(app)) === 503, 30_000, 'readiness 503 while the broker is down');
    const body = (await request(app.getHttpServer()).get('/health/ready')).body;
    expect(JSON.stringify(body)).toContain('rabbitmq');

    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await submit(app, newTenant('brokerdown')).expect(202);
      accepted.push(res.body.submissionId);
    }
    const waiting = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE event_type = 'key.submitted' AND published_at IS NULL`);
    expect(Number(waiting[0].n)).toBe(5);

    await broker.start();
    await eventually(async () => (await ready(app)) === 200, 60_000, 'ready again');
    await eventually(async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE published_at IS NULL`))[0].n) === 0, 60_000, 'the outbox drained');
    // Every accepted submission's event is waiting for the validator.
    const connection = await connect(broker.url);
    const channel = await connection.createChannel();
    const seen: string[] = [];
    for (;;) {
      const msg = await channel.get(new TopologyNames(prefix).queue('validator'), { noAck: true });
      if (msg === false) break;
      seen.push(JSON.parse(msg.content.toString()).data.submissionId);
    }
    await connection.close();
    expect(seen.sort()).toEqual([...accepted].sort());
  });
});

describe('intake while Postgres is down', () => {
  let pg: PrivatePostgres;
  let app: INestApplication;
  let databaseUrl: string;
  let prefix: string;
  const logs = captureLogs('intake');

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    databaseUrl = await pg.createMigratedDatabase();
    prefix = testPrefix();
    const config = testConfig('intake', { databaseUrl, prefix });
    app = await startTestService(intakeService(config), config, logs.logger);
  });
  afterAll(async () => {
    await app?.close();
    await pg?.shutdown();
  });

  const counts = async () => {
    const { Client } = await import('pg');
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    const row = (
      await client.query(
        `SELECT (SELECT count(*) FROM submissions)::int AS submissions, (SELECT count(*) FROM outbox)::int AS outbox,
                (SELECT count(*) FROM secret_versions)::int AS secrets, (SELECT count(*) FROM audit_log)::int AS audit`,
      )
    ).rows[0];
    await client.end();
    return row;
  };

  it('answers 503 database_unavailable and keeps nothing, reports not ready, and recovers when Postgres is back', async () => {
    await submit(app, newTenant('pgup')).expect(202);
    const before = await counts();
    expect(before.submissions).toBe(1);

    await pg.stop();
    const refused = await submit(app, newTenant('pgdown'));
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'database_unavailable' });
    expect(refused.body.error.message).toEqual(expect.any(String));
    expect(refused.headers['retry-after']).toBeDefined();
    expect(JSON.stringify(refused.body)).not.toMatch(/pleo_outage|ECONNREFUSED|127\.0\.0\.1/);
    expect(await ready(app)).toBe(503);

    await pg.start();
    await eventually(async () => (await ready(app)) === 200, 60_000, 'ready again');
    // Nothing of the refused submission was written, not even half of it.
    expect(await counts()).toEqual(before);
    await eventually(async () => (await submit(app, newTenant('pgback'))).status === 202, 30_000, 'submissions accepted again');
    expect((await counts()).submissions).toBe(2);
  });

  it('survives every connection being terminated (pg_terminate_backend): the next submissions are accepted', async () => {
    expect(await pg.terminateBackends()).toBeGreaterThan(0);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await submit(app, newTenant('terminated'))).status);
    // A request on a connection cut a moment ago may be refused cleanly; none fails with 500, and service resumes.
    expect(statuses.every((s) => s === 202 || s === 503)).toBe(true);
    expect(statuses.at(-1)).toBe(202);
  });
});
