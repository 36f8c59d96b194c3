import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createEvent } from '@keyward/contracts';
import { Outbox, Reconciler, Sweep } from '@keyward/messaging';
import { Metrics } from '@keyward/observability';
import { createDataSource } from '@keyward/persistence';
import { attemptsAsValidator, captureLogs, createTestDatabase, credentialAsRotation, submissionAsIntake, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { unvalidatedSubmissionsSweep } from '../../apps/intake/submissions/unvalidated-submissions.sweep';
import { unpublishedAlertsSweep } from '../../apps/monitor/unpublished-alerts.sweep';
import { unappliedVerdictsSweep } from '../../apps/rotation/unapplied-verdicts.sweep';

/**
 * The reconciler, sweep by sweep, against a real Postgres: stuck work is re-staged through the
 * outbox (the same event, for the relay to publish again), everything that is still moving is left
 * alone, and an operator sees counts by kind and a log line.
 */
describe('reconciler: stuck work is driven again', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let metrics: Metrics;
  const logs = captureLogs('reconciler-test');

  beforeAll(async () => {
    db = await createTestDatabase();
    dataSource = await createDataSource({ url: db.url, poolSize: 3 }).initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await db?.drop();
  });

  const reconciler = (sweeps: Sweep[], maxRedrives = 3) => {
    metrics = new Metrics('test');
    const config = testConfig('tool', {
      databaseUrl: db.url,
      prefix: testPrefix(),
      KEYWARD_RECONCILE_STUCK_AFTER_SECONDS: '60',
      KEYWARD_RECONCILE_SUBMISSION_STUCK_AFTER_SECONDS: '600',
      KEYWARD_RECONCILE_MAX_REDRIVES: String(maxRedrives),
    });
    return new Reconciler(dataSource, sweeps, config, logs.logger, metrics);
  };
  const found = async (kind: string, action: string) => {
    const metric = await metrics.registry.getSingleMetric('keyward_reconciler_found_total')!.get();
    return metric.values.find((v) => v.labels.kind === kind && v.labels.action === action)?.value ?? 0;
  };
  const outboxRow = async (id: string) => (await db.query<{ published_at: Date | null; last_error: string | null }>(`SELECT published_at, last_error FROM outbox WHERE id = $1`, [id]))[0];

  /** A submission and its key.submitted, both `minutesAgo` old and published. */
  async function submission(minutesAgo: number) {
    const tenantId = `t-${randomUUID()}`;
    const { submissionId, credentialId } = await submissionAsIntake(db, { tenantId, replacing: false, correlationId: 'corr', minutesAgo });
    const event = createEvent('key.submitted', { tenantId, correlationId: 'corr', producer: 'intake' }, { submissionId, credentialId, secretVersionId: credentialId, last4: 'ab12', replacing: false });
    await dataSource.transaction((tx) => Outbox.stage(tx, event));
    await db.query(`UPDATE outbox SET published_at = now() - make_interval(mins => $2), attempts = 1, created_at = now() - make_interval(mins => $2) WHERE id = $1`, [event.id, minutesAgo]);
    return { tenantId, submissionId, credentialId, eventId: event.id };
  }

  it('re-stages the key.submitted of a submission pending for longer than the threshold with nothing moving it, and only that one', async () => {
    const stuck = await submission(30);
    const fresh = await submission(2);
    const retrying = await submission(30);
    await db.query(
      `INSERT INTO scheduled_retries (subscriber, event_id, event_type, tenant_id, payload, attempt, due_at) VALUES ('validator', $1, 'key.submitted', $2, '{}', 1, now() + interval '5 minutes')`,
      [retrying.eventId, retrying.tenantId],
    );
    const parked = await submission(30);
    await attemptsAsValidator(db, { credentialId: parked.credentialId, tenantId: parked.tenantId, attempts: 9, parked: true });
    const decided = await submission(30);
    await credentialAsRotation(db, decided.submissionId, { status: 'rejected', reason: 'invalid_key' });

    const results = await reconciler([unvalidatedSubmissionsSweep]).sweepAll();

    expect(results.submission_unvalidated.redriven).toEqual([stuck.eventId]);
    expect(await outboxRow(stuck.eventId)).toMatchObject({ published_at: null, last_error: 'reconciler' });
    for (const other of [fresh, retrying, parked, decided]) expect((await outboxRow(other.eventId)).published_at).not.toBeNull();
    expect(await found('submission_unvalidated', 'redriven')).toBe(1);
    const line = logs
      .lines()
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'Reconciler found stuck work and drove it again');
    expect(line).toMatchObject({ kind: 'submission_unvalidated', count: 1, eventIds: [stuck.eventId] });
    expect(JSON.stringify(line)).not.toContain(stuck.tenantId);
  });

  it('rebuilds the key.submitted when the outbox no longer has it', async () => {
    const stuck = await submission(30);
    await db.query(`DELETE FROM outbox WHERE id = $1`, [stuck.eventId]);
    const results = await reconciler([unvalidatedSubmissionsSweep]).sweepAll();
    expect(results.submission_unvalidated.redriven).toHaveLength(1);
    const [row] = await db.query<{ payload: { data: { submissionId: string; credentialId: string } }; published_at: Date | null }>(`SELECT payload, published_at FROM outbox WHERE id = $1`, [
      results.submission_unvalidated.redriven[0],
    ]);
    expect(row.published_at).toBeNull();
    expect(row.payload.data).toMatchObject({ submissionId: stuck.submissionId, credentialId: stuck.credentialId });
  });

  it('re-drives one event at most KEYWARD_RECONCILE_MAX_REDRIVES times, then reports it for an operator', async () => {
    const stuck = await submission(30);
    const r = reconciler([unvalidatedSubmissionsSweep], 2);
    const actions: string[] = [];
    for (let round = 0; round < 3; round++) {
      const result = (await r.sweepAll()).submission_unvalidated;
      actions.push(result.redriven.includes(stuck.eventId) ? 'redriven' : result.gaveUp.includes(stuck.eventId) ? 'gave_up' : 'none');
      // The relay published it again, and again nothing happened.
      await db.query(`UPDATE outbox SET published_at = now() - interval '30 minutes', attempts = attempts + 1 WHERE id = $1`, [stuck.eventId]);
    }
    expect(actions).toEqual(['redriven', 'redriven', 'gave_up']);
    expect(await found('submission_unvalidated', 'gave_up')).toBeGreaterThanOrEqual(1);
    expect(logs.text()).toContain('an operator must look');
  });

  it('re-stages a key.validated that rotation never handled (activation not done), not one it handled', async () => {
    const tenantId = `t-${randomUUID()}`;
    const verdict = (credentialId: string) =>
      createEvent('key.validated', { tenantId, correlationId: 'corr', producer: 'validator' }, { submissionId: randomUUID(), credentialId, companyId: 'c1', subjectType: 'company', scopes: [] });
    const lost = verdict(randomUUID());
    const handled = verdict(randomUUID());
    await dataSource.transaction((tx) => Outbox.stage(tx, lost, handled));
    await db.query(`UPDATE outbox SET published_at = now() - interval '10 minutes', attempts = 1 WHERE id = ANY($1::uuid[])`, [[lost.id, handled.id]]);
    await db.query(`INSERT INTO inbox (consumer, event_id, event_type) VALUES ('rotation', $1, 'key.validated')`, [handled.id]);

    const results = await reconciler([unappliedVerdictsSweep]).sweepAll();

    expect(results.verdict_unapplied.redriven).toEqual([lost.id]);
    expect((await outboxRow(lost.id)).published_at).toBeNull();
    expect((await outboxRow(handled.id)).published_at).not.toBeNull();
    expect(await found('verdict_unapplied', 'redriven')).toBe(1);
  });

  it('makes an alert that was committed but never published due now', async () => {
    const alert = createEvent(
      'alert.reconnection_required',
      { tenantId: `t-${randomUUID()}`, correlationId: 'corr', producer: 'monitor' },
      { reason: 'invalid_key', companyId: 'c1', last4: 'ab12', since: new Date().toISOString(), action: 'reconnect' },
    );
    await dataSource.transaction((tx) => Outbox.stage(tx, alert));
    // Backed off after unroutable returns, far into the future.
    await db.query(`UPDATE outbox SET created_at = now() - interval '10 minutes', available_at = now() + interval '1 hour' WHERE id = $1`, [alert.id]);

    const results = await reconciler([unpublishedAlertsSweep]).sweepAll();

    expect(results.alert_unpublished.redriven).toEqual([alert.id]);
    const [row] = await db.query<{ due: boolean }>(`SELECT available_at <= now() AS due FROM outbox WHERE id = $1`, [alert.id]);
    expect(row.due).toBe(true);
  });
});
