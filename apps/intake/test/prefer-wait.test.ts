import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AuditLog } from '@keyward/persistence';
import request from 'supertest';
import { canaryKey, credentialAsRotation, captureLogs, eventually, PrivatePostgres, startPrivatePostgres, startTestService, testConfig, testPrefix, dropTopology } from '@keyward/testing';
import { intakeService } from '../intake.definition';
import { activateAsRotation, IntakeHarness, newTenant, rejectAsRotation, SERVICE, startIntake } from './intake-harness';

/**
 * `Prefer: wait` answers at the commit that decides the submission: the commit notifies, intake's
 * one LISTEN connection wakes the request, the request reads its row again. The slow re-check is
 * set to an hour here (far beyond the jest timeout and the 30 s wait), so an answer before the
 * deadline can only have come from the deciding commit — except in the test where the
 * notification is lost on purpose.
 */
jest.setTimeout(180_000);

const AN_HOUR = '3600000';

type Http = () => ReturnType<typeof request>;

/** A sample of intake's /metrics; `label` (`cause="…"`) picks one series. */
async function metricValue(http: Http, name: string, label?: string): Promise<number> {
  const text = (await http().get('/metrics').expect(200)).text;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === name && (!label || (match[2] ?? '').includes(label))) return Number(match[3]);
  }
  return 0;
}
const wakeups = (http: Http, cause: string) => metricValue(http, 'keyward_intake_prefer_wait_wakeups_total', `cause="${cause}"`);
async function wakeupCounts(http: Http): Promise<Record<string, number>> {
  const causes = ['notification', 'relisten', 'recheck', 'deadline'];
  return Object.fromEntries(await Promise.all(causes.map(async (c) => [c, await wakeups(http, c)] as const)));
}
const listening = async (http: Http) => (await metricValue(http, 'keyward_intake_decision_listener_up')) === 1;
const waiting = (http: Http) => metricValue(http, 'keyward_intake_prefer_wait_requests');

const submitWaiting = (http: Http, tenantId: string, seconds: number, apiKey = canaryKey()) =>
  http()
    .put(`/v1/tenants/${tenantId}/pleo/key`)
    .set('Authorization', SERVICE)
    .set('Prefer', `wait=${seconds}`)
    .send({ apiKey })
    .then((res) => res);

describe('Prefer: wait answers at the deciding commit', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake({ KEYWARD_PREFER_WAIT_RECHECK_MS: AN_HOUR });
    await eventually(() => listening(h.http), 15_000, 'intake to listen for decisions');
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Submits with `Prefer: wait=30` and resolves once intake holds the request waiting. */
  async function waitingSubmission(tenantId: string): Promise<{ submissionId: string; answer: ReturnType<typeof submitWaiting> }> {
    const before = await waiting(h.http);
    const answer = submitWaiting(h.http, tenantId, 30);
    const event = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenantId);
    await eventually(async () => (await waiting(h.http)) > before, 15_000, 'the request to wait');
    return { submissionId: event.data.submissionId, answer };
  }

  it('answers 200 accepted when rotation commits the activation, not on a re-check', async () => {
    const before = await wakeupCounts(h.http);
    const tenant = newTenant('wake');
    const { submissionId, answer } = await waitingSubmission(tenant);

    await activateAsRotation(h, submissionId);
    const res = await answer;

    expect(res.status).toBe(200);
    expect(res.headers['preference-applied']).toBe('wait=30');
    expect(res.body).toMatchObject({ submissionId, status: 'accepted' });
    const after = await wakeupCounts(h.http);
    expect(after.recheck).toBe(before.recheck);
    expect(after.deadline).toBe(before.deadline);
  });

  it('answers 200 with the rejection, and 200 superseded to the request whose submission a newer one replaced', async () => {
    const rejectedTenant = newTenant('wake-reject');
    const rejected = await waitingSubmission(rejectedTenant);
    await rejectAsRotation(h, rejected.submissionId, 'insufficient_scopes', ['export-jobs:write']);
    const rejection = await rejected.answer;
    expect(rejection.status).toBe(200);
    expect(rejection.body).toMatchObject({ status: 'rejected', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });

    const tenant = newTenant('wake-supersede');
    const older = await waitingSubmission(tenant);
    await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', SERVICE).send({ apiKey: canaryKey() }).expect(202);
    const superseded = await older.answer;
    expect(superseded.status).toBe(200);
    expect(superseded.body).toMatchObject({ submissionId: older.submissionId, status: 'superseded' });
  });

  it("never wakes a tenant's request for another tenant's decision, even one naming its submission id", async () => {
    const tenantA = newTenant('tenant-a');
    const tenantB = newTenant('tenant-b');
    const a = (await h.http().put(`/v1/tenants/${tenantA}/pleo/key`).set('Authorization', SERVICE).send({ apiKey: canaryKey() }).expect(202)).body;
    const before = await wakeupCounts(h.http);
    const answerB = submitWaiting(h.http, tenantB, 2);
    const b = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenantB);
    await eventually(async () => (await waiting(h.http)) > 0, 15_000, "B's request to wait");

    await activateAsRotation(h, a.submissionId);
    await h.db.query(`SELECT pg_notify('keyward_submission_decided', json_build_object('tenantId', $1::text, 'submissionId', $2::text)::text)`, [tenantA, b.data.submissionId]);
    const res = await answerB;

    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ submissionId: b.data.submissionId, status: 'pending_validation' });
    const after = await wakeupCounts(h.http);
    expect(after.notification).toBe(before.notification);
    expect(after.deadline).toBeGreaterThan(before.deadline);
  });

  it("answers a connection check when the validator's answer commits, not on a re-check", async () => {
    const tenant = newTenant('check');
    const { submissionId, answer } = await waitingSubmission(tenant);
    await activateAsRotation(h, submissionId);
    expect((await answer).body).toMatchObject({ status: 'accepted' });
    const before = await wakeupCounts(h.http);
    const waitingBefore = await waiting(h.http);

    const check = h
      .http()
      .post(`/v1/tenants/${tenant}/pleo/connection/check`)
      .set('Authorization', SERVICE)
      .set('Prefer', 'wait=30')
      .then((res) => res);
    const requested = await h.tap.waitFor('connection.check_requested', (e) => e.tenantId === tenant);
    await eventually(async () => (await waiting(h.http)) > waitingBefore, 15_000, 'the check to wait');
    // What the validator appends when it answers the check (ADR 24).
    await h.app.get(DataSource).transaction((tx) =>
      AuditLog.append(tx, {
        tenantId: tenant,
        actor: 'service:validator',
        action: 'credential.revalidated',
        credentialId: requested.data.credentialId,
        details: { checkId: requested.id, outcome: 'valid', missingScopes: [] },
      }),
    );
    const res = await check;

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ checkId: requested.id, status: 'completed', outcome: 'valid' });
    const after = await wakeupCounts(h.http);
    expect(after.notification).toBeGreaterThan(before.notification);
    expect(after.recheck).toBe(before.recheck);
    expect(after.deadline).toBe(before.deadline);
  });
});

describe('Prefer: wait when a notification is lost', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake({ KEYWARD_PREFER_WAIT_RECHECK_MS: '300' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers the decision on the slow re-check', async () => {
    const before = await wakeupCounts(h.http);
    const tenant = newTenant('lost');
    const answer = submitWaiting(h.http, tenant, 30);
    const event = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenant);

    // The decision commits with triggers off for this transaction: no notification is ever sent.
    const client = new Client({ connectionString: h.db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await credentialAsRotation(client, event.data.submissionId, { status: 'active', companyId: 'company-1' });
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const res = await answer;

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ submissionId: event.data.submissionId, status: 'accepted' });
    const after = await wakeupCounts(h.http);
    expect(after.recheck).toBeGreaterThan(before.recheck);
    expect(after.notification).toBe(before.notification);
  });
});

describe('Prefer: wait across a Postgres restart (a Postgres of the test’s own)', () => {
  let pg: PrivatePostgres;
  let app: INestApplication;
  let databaseUrl: string;
  let prefix: string;
  const http: Http = () => request(app.getHttpServer());

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    databaseUrl = await pg.createMigratedDatabase();
    prefix = testPrefix();
    const config = testConfig('intake', { databaseUrl, prefix, KEYWARD_PREFER_WAIT_RECHECK_MS: AN_HOUR });
    app = await startTestService(intakeService(config), config, captureLogs('intake').logger);
    await eventually(() => listening(http), 15_000, 'intake to listen for decisions');
  });
  afterAll(async () => {
    await app?.close();
    await pg?.shutdown();
    if (prefix) await dropTopology(prefix);
  });

  const sql = async <T>(text: string, params: unknown[] = []): Promise<T[]> => {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  };

  it('listens again, has every waiting request read its row again, and answers the next decision at its commit', async () => {
    const before = await wakeupCounts(http);
    const tenant = newTenant('restart');
    const answer = submitWaiting(http, tenant, 30);
    const [submission] = await eventually(
      async () => {
        const rows = await sql<{ id: string }>('SELECT id FROM submissions WHERE tenant_id = $1', [tenant]);
        return rows.length ? rows : undefined;
      },
      15_000,
      'the submission',
    );
    await eventually(async () => (await waiting(http)) === 1, 15_000, 'the request to wait');

    await pg.restart(500);
    await eventually(async () => (await wakeups(http, 'relisten')) > before.relisten && (await listening(http)), 60_000, 'LISTEN again and a re-read');

    await credentialAsRotation({ query: sql }, submission.id, { status: 'active', companyId: 'company-1' });
    const res = await answer;

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ submissionId: submission.id, status: 'accepted' });
    const after = await wakeupCounts(http);
    expect(after.recheck).toBe(before.recheck);
    expect(after.notification).toBeGreaterThan(before.notification);
  });
});
