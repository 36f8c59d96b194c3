import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createTestDatabase, eventually, TestDatabase } from '@keyward/testing';
import { NotificationListener } from './notification-listener';
import { parseSubmissionDecided, SUBMISSION_DECIDED_CHANNEL, SubmissionDecided } from './submission-decided';

/** The deciding commit's notification (trigger) and one LISTEN connection that outlives its backend. */
describe('submission decisions on keyward_submission_decided', () => {
  let db: TestDatabase;
  let listener: NotificationListener;
  const received: (SubmissionDecided | null)[] = [];
  let listened = 0;
  const applicationName = `keyward-spec-listen-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    listener = new NotificationListener({
      url: db.url,
      channel: SUBMISSION_DECIDED_CHANNEL,
      applicationName,
      initialBackoffMs: 50,
      onNotification: (payload) => received.push(parseSubmissionDecided(payload)),
      onListening: () => (listened += 1),
    });
    listener.start();
    await eventually(() => listener.isListening, 15_000, 'the listener to LISTEN');
  });
  afterAll(async () => {
    await listener?.stop();
    await db?.drop();
  });

  async function submission(tenantId: string): Promise<{ id: string; credentialId: string }> {
    const id = randomUUID();
    const credentialId = randomUUID();
    await db.query(
      `INSERT INTO submissions (id, tenant_id, credential_id, secret_version_id, last4, fingerprint, replacing, submitted_by, correlation_id)
       VALUES ($1, $2, $3, $4, 'abcd', repeat('0', 64), false, 'token:dev', 'corr')`,
      [id, tenantId, credentialId, credentialId],
    );
    return { id, credentialId };
  }
  const decide = (s: { id: string }, status: 'active' | 'rejected') =>
    `INSERT INTO credentials (id, tenant_id, submission_id, secret_version_id, last4, fingerprint, status)
     SELECT credential_id, tenant_id, id, secret_version_id, last4, fingerprint, '${status}' FROM submissions WHERE id = '${s.id}'`;
  const submissionOf = (r: SubmissionDecided | null) => (r && 'submissionId' in r ? r.submissionId : undefined);
  const arrived = (tenantId: string, submissionId: string) =>
    eventually(() => received.some((r) => r?.tenantId === tenantId && submissionOf(r) === submissionId), 15_000, `the notification of ${submissionId}`);

  it("carries the tenant and submission ids, nothing else, once rotation's decision commits — and nothing for a rolled-back one", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const rolledBack = await submission(tenantId);
    const committed = await submission(tenantId);
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`BEGIN; ${decide(rolledBack, 'active')}; ROLLBACK`);
      await client.query(`BEGIN; ${decide(committed, 'rejected')}; COMMIT`);
    } finally {
      await client.end();
    }
    await arrived(tenantId, committed.id);
    // Delivered in commit order: had the rolled-back one been sent, it would be here by now.
    expect(received.filter((r) => submissionOf(r) === rolledBack.id)).toEqual([]);
    expect(received.filter((r) => submissionOf(r) === committed.id)).toEqual([{ tenantId, submissionId: committed.id }]);
  });

  it('notifies when a newer submission supersedes an undecided one, and when a decided status changes', async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const older = await submission(tenantId);
    await db.query(`UPDATE submissions SET superseded_at = now() WHERE id = $1`, [older.id]);
    await arrived(tenantId, older.id);

    const decided = await submission(tenantId);
    await db.query(decide(decided, 'active'));
    await arrived(tenantId, decided.id);
    const before = received.length;
    await db.query(`UPDATE credentials SET status = 'invalidated', invalidated_reason = 'replaced' WHERE id = $1`, [decided.credentialId]);
    await eventually(() => received.slice(before).some((r) => submissionOf(r) === decided.id), 15_000, 'the status change');
  });

  it("carries the tenant and check ids once the validator's answer to a connection check commits, and nothing for other audit entries", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const checkId = randomUUID();
    let seq = 0;
    const entry = (action: string, details: Record<string, string>) =>
      db.query(`INSERT INTO audit_log (tenant_id, seq, actor, action, details, prev_hash, hash) VALUES ($1, $2, 'service:validator', $3, $4, repeat('0', 64), repeat('1', 64))`, [
        tenantId,
        ++seq,
        action,
        JSON.stringify(details),
      ]);
    await entry('connection.check_requested', { checkId: randomUUID() });
    await entry('credential.revalidated', { outcome: 'valid' });
    await entry('credential.revalidated', { outcome: 'valid', checkId });
    await eventually(() => received.some((r) => r?.tenantId === tenantId && 'checkId' in r && r.checkId === checkId), 15_000, 'the check answer');
    // Delivered in commit order: the two entries before it would have arrived first.
    expect(received.filter((r) => r?.tenantId === tenantId)).toEqual([{ tenantId, checkId }]);
  });

  it('listens again after its connection is cut, and says so, so the caller can look at its rows again', async () => {
    const before = listened;
    const [{ n }] = await db.query<{ n: number }>(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`, [applicationName]);
    expect(n).toBe(1);
    await eventually(() => listened > before && listener.isListening, 15_000, 'LISTEN again');

    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const after = await submission(tenantId);
    await db.query(decide(after, 'active'));
    await arrived(tenantId, after.id);
  });
});
