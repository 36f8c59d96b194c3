import { SecretReader } from '@keyward/secrets';
import { attemptsAsValidator, canaryKey, eventually, healthAsMonitor, uninstallAsRotation } from '@keyward/testing';
import { CONNECTION } from '../connections/connection.schema';
import { activateAsRotation, IntakeHarness, newTenant, OPS, rejectAsRotation, SERVICE, sleep, startIntake } from './intake-harness';

describe('intake: connection status, compromise, uninstall and audit', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake();
  });
  afterAll(async () => {
    await h?.close();
  });

  const submit = async (tenantId: string, key = canaryKey()) =>
    (await h.http().put(`/v1/tenants/${tenantId}/pleo/key`).set('Authorization', SERVICE).send({ apiKey: key }).expect(202)).body as { submissionId: string; credentialId: string };
  /** Every answer is also held to the schema its OpenAPI description is generated from. */
  const connection = async (tenantId: string) => {
    const body = (await h.http().get(`/v1/tenants/${tenantId}/pleo/connection`).set('Authorization', SERVICE).expect(200)).body;
    expect(CONNECTION.safeParse(body).error).toBeUndefined();
    return body;
  };

  it('shows a tenant that never submitted as not connected, without an error', async () => {
    const tenant = newTenant();
    expect(await connection(tenant)).toEqual({
      tenantId: tenant,
      status: 'not_connected',
      companyId: null,
      subject: null,
      scopes: [],
      key: null,
      activatedAt: null,
      lastValidatedAt: null,
      health: { authFailures: 0, lastAuthFailureAt: null, since: null },
      error: null,
      pendingSubmission: null,
    });
  });

  it('shows pending validation, then active with the company and the key as last4 only', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const { submissionId } = await submit(tenant, key);
    const pending = await connection(tenant);
    expect(pending).toMatchObject({ status: 'pending_validation', key: null, error: null, pendingSubmission: { submissionId, key: { last4: key.slice(-4) } } });

    await activateAsRotation(h, submissionId, 'company-42');
    const active = await connection(tenant);
    expect(active).toMatchObject({
      status: 'active',
      companyId: 'company-42',
      subject: { type: 'company', id: 'company-42' },
      scopes: ['accounts:read', 'export-jobs:write'],
      key: { last4: key.slice(-4), masked: `••••••••${key.slice(-4)}` },
      error: null,
      pendingSubmission: null,
    });
    expect(active.activatedAt).toEqual(expect.any(String));
    expect(JSON.stringify(active)).not.toContain(key);
  });

  it('keeps showing the active key while a replacement is pending', async () => {
    const tenant = newTenant();
    await activateAsRotation(h, (await submit(tenant)).submissionId);
    const replacement = await submit(tenant);
    expect(await connection(tenant)).toMatchObject({ status: 'active', pendingSubmission: { submissionId: replacement.submissionId, status: 'pending_validation' } });
  });

  it('shows the rejection of a first key with what to do', async () => {
    const tenant = newTenant();
    const { submissionId } = await submit(tenant);
    await rejectAsRotation(h, submissionId, 'invalid_key');
    expect(await connection(tenant)).toMatchObject({
      status: 'not_connected',
      error: { code: 'invalid_key', message: 'Pleo did not accept this API key.', action: 'Copy the key again from the Pleo installation screen and paste it here.' },
    });
  });

  it('shows Pleo being unreachable for a pending key', async () => {
    const tenant = newTenant();
    const { credentialId } = await submit(tenant);
    await attemptsAsValidator(h.db, { credentialId, tenantId: tenant, attempts: 1, lastErrorCode: 'pleo_unreachable' });
    expect(await connection(tenant)).toMatchObject({ status: 'pending_validation', error: { code: 'pleo_unreachable' } });
  });

  it('shows degraded and reconnect_required (with missing scopes) from the health of the active key', async () => {
    const tenant = newTenant();
    const credentialId = await activateAsRotation(h, (await submit(tenant)).submissionId);
    await healthAsMonitor(h.db, { tenantId: tenant, credentialId, state: 'degraded', authFailures: 3 });
    expect(await connection(tenant)).toMatchObject({ status: 'degraded', health: { authFailures: 3 }, error: { code: 'degraded' } });

    await healthAsMonitor(h.db, { tenantId: tenant, credentialId, state: 'reconnect_required', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });
    expect(await connection(tenant)).toMatchObject({ status: 'reconnect_required', error: { code: 'insufficient_scopes', missingScopes: ['export-jobs:write'] } });

    await healthAsMonitor(h.db, { tenantId: tenant, credentialId, state: 'reconnect_required', reason: 'insufficient_scopes' });
    expect((await connection(tenant)).error.code).toBe('reconnect_required');

    // A newly activated key starts healthy: the old health row no longer applies.
    await activateAsRotation(h, (await submit(tenant)).submissionId);
    expect(await connection(tenant)).toMatchObject({ status: 'active', error: null, health: { authFailures: 0 } });
  });

  it('commits the revocation before answering a compromise, then publishes key.compromised', async () => {
    const tenant = newTenant();
    const credentialId = await activateAsRotation(h, (await submit(tenant)).submissionId);
    expect((await h.app.get(SecretReader).readForUse(tenant, credentialId)).last4).toHaveLength(4);

    const res = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', OPS).set('X-Correlation-Id', 'corr-compromise-1').expect(200);
    const [{ last4 }] = await h.db.query<{ last4: string }>('SELECT last4 FROM credentials WHERE id = $1', [credentialId]);
    expect(res.body).toEqual({ status: 'disabled', credentialId, key: { last4, masked: `••••••••${last4}` } });
    expect(await h.db.query('SELECT reason, reported_by FROM revocations WHERE credential_id = $1', [credentialId])).toEqual([{ reason: 'compromised', reported_by: 'token:ops' }]);
    await expect(h.app.get(SecretReader).readForUse(tenant, credentialId)).rejects.toThrow();

    const event = await h.tap.waitFor('key.compromised', (e) => e.tenantId === tenant);
    expect(event).toMatchObject({ correlationId: 'corr-compromise-1', data: { credentialId, reportedBy: 'token:ops' } });
    expect(await connection(tenant)).toMatchObject({ status: 'disabled', error: { code: 'key_compromised', action: expect.stringContaining('Generate a replacement key') } });

    // Reporting it again changes nothing and publishes nothing.
    await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', SERVICE).expect(200);
    await sleep(300);
    expect(h.tap.ofType('key.compromised', tenant)).toHaveLength(1);
  });

  it('answers 409 to a compromise report when the tenant has no active key', async () => {
    const tenant = newTenant();
    await submit(tenant);
    const res = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', SERVICE).expect(409);
    expect(res.body.error).toEqual({ code: 'no_active_key', message: expect.any(String), action: expect.any(String) });
    expect(await h.db.query('SELECT 1 FROM revocations WHERE tenant_id = $1', [tenant])).toHaveLength(0);
  });

  it('reports a pending key compromised by its credentialId: revoked at once, the active key untouched, the key refused when pasted again', async () => {
    const tenant = newTenant();
    const active = await activateAsRotation(h, (await submit(tenant)).submissionId);
    const leaked = canaryKey();
    const pending = await submit(tenant, leaked);

    const res = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', OPS).send({ credentialId: pending.credentialId }).expect(200);
    expect(res.body).toEqual({ status: 'revoked', credentialId: pending.credentialId, key: { last4: leaked.slice(-4), masked: `••••••••${leaked.slice(-4)}` } });
    expect(await h.db.query('SELECT credential_id, reason FROM revocations WHERE tenant_id = $1', [tenant])).toEqual([{ credential_id: pending.credentialId, reason: 'compromised' }]);
    const event = await h.tap.waitFor('key.compromised', (e) => e.tenantId === tenant);
    expect(event.data.credentialId).toBe(pending.credentialId);
    expect((await connection(tenant)).status).toBe('active');
    expect((await h.app.get(SecretReader).readForUse(tenant, active)).last4).toHaveLength(4);

    const again = await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', SERVICE).send({ apiKey: leaked }).expect(422);
    expect(again.body.error.code).toBe('key_previously_compromised');
    const unknown = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', OPS).send({ credentialId: '00000000-0000-4000-8000-000000000001' }).expect(404);
    expect(unknown.body.error.code).toBe('credential_not_found');
    expect((await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', OPS).send({ credentialId: 'not-a-uuid' }).expect(400)).body.error.code).toBe('invalid_request');
  });

  it('reports the key an uninstall took out of service as compromised, so a reinstall with that key is refused', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const credentialId = await activateAsRotation(h, (await submit(tenant, key)).submissionId);
    await h.http().delete(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', SERVICE).expect(202);
    await uninstallAsRotation(h.db, tenant);

    const res = await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', OPS).expect(200);
    expect(res.body).toMatchObject({ status: 'revoked', credentialId });
    expect(await h.db.query('SELECT reason FROM revocations WHERE credential_id = $1', [credentialId])).toEqual([{ reason: 'compromised' }]);
    expect((await h.tap.waitFor('key.compromised', (e) => e.tenantId === tenant)).data.credentialId).toBe(credentialId);

    const reinstall = await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', SERVICE).send({ apiKey: key }).expect(422);
    expect(reinstall.body.error.code).toBe('key_previously_compromised');
  });

  it('uninstalls: revokes the active and pending keys and publishes connection.uninstalled', async () => {
    const tenant = newTenant();
    const active = await activateAsRotation(h, (await submit(tenant)).submissionId);
    const pending = await submit(tenant);
    const res = await h.http().delete(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', SERVICE).expect(202);
    expect(res.body).toEqual({ tenantId: tenant, status: 'uninstalled', revokedCredentialIds: expect.arrayContaining([active, pending.credentialId]) });
    const revoked = await h.db.query<{ credential_id: string; reason: string }>('SELECT credential_id, reason FROM revocations WHERE tenant_id = $1 ORDER BY credential_id', [tenant]);
    expect(revoked).toEqual([active, pending.credentialId].sort().map((id) => ({ credential_id: id, reason: 'uninstalled' })));
    const event = await h.tap.waitFor('connection.uninstalled', (e) => e.tenantId === tenant);
    expect(event.data).toEqual({ reason: 'uninstall_requested', since: expect.any(String) });
    expect((await connection(tenant)).status).toBe('uninstalled');

    // Once rotation recorded it, a repeat publishes nothing new.
    await uninstallAsRotation(h.db, tenant);
    await h.http().delete(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', SERVICE).expect(202);
    await sleep(300);
    expect(h.tap.ofType('connection.uninstalled', tenant)).toHaveLength(1);
  });

  it('lists the audit log newest first with a verified chain, filtered by since', async () => {
    const tenant = newTenant();
    const { submissionId } = await submit(tenant);
    await activateAsRotation(h, submissionId);
    await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', SERVICE).expect(200);

    const res = await h.http().get(`/v1/tenants/${tenant}/audit`).set('Authorization', SERVICE).expect(200);
    expect(res.body.tenantId).toBe(tenant);
    expect(res.body.entries.map((e: { action: string }) => e.action)).toEqual(['key.compromise_reported', 'key.submitted']);
    expect(res.body.entries[1]).toMatchObject({ seq: 1, actor: 'token:dev', last4: expect.any(String), credentialId: expect.any(String) });
    expect(res.body.chain).toEqual({ ok: true, entries: 2, verifiedThroughSeq: 2 });
    expect(res.body.nextCursor).toBeNull();

    const future = new Date(Date.now() + 60_000).toISOString();
    const none = await h.http().get(`/v1/tenants/${tenant}/audit`).query({ since: future }).set('Authorization', SERVICE).expect(200);
    expect(none.body.entries).toEqual([]);
    const bad = await h.http().get(`/v1/tenants/${tenant}/audit`).query({ since: 'yesterday' }).set('Authorization', SERVICE).expect(400);
    expect(bad.body.error.code).toBe('invalid_since');
  });

  it('pages the audit log with a cursor, newest first, and refuses a cursor it did not hand out', async () => {
    const tenant = newTenant();
    for (let i = 0; i < 5; i++) await submit(tenant);
    const page = async (query: Record<string, string>) => (await h.http().get(`/v1/tenants/${tenant}/audit`).query(query).set('Authorization', SERVICE).expect(200)).body;

    const first = await page({ limit: '2' });
    expect(first.entries.map((e: { seq: number }) => e.seq)).toEqual([5, 4]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await page({ limit: '2', cursor: first.nextCursor });
    expect(second.entries.map((e: { seq: number }) => e.seq)).toEqual([3, 2]);
    const third = await page({ limit: '2', cursor: second.nextCursor });
    expect(third.entries.map((e: { seq: number }) => e.seq)).toEqual([1]);
    expect(third.nextCursor).toBeNull();
    expect(third.chain).toMatchObject({ ok: true, entries: 5 });

    const bad = await h.http().get(`/v1/tenants/${tenant}/audit`).query({ cursor: 'seq-3' }).set('Authorization', SERVICE).expect(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
  });

  it('publishes exactly the events of intake, none carrying key material', async () => {
    await eventually(() => h.tap.events.length > 0, 5_000, 'events');
    for (const event of h.tap.events) expect(['key.submitted', 'key.compromised', 'connection.uninstalled']).toContain(event.type);
    for (const raw of h.tap.raw) expect(raw).not.toMatch(/pleo_canary_/);
  });
});
