import { attemptsAsValidator, canaryKey, eventually, healthAsMonitor, revocationAsIntake } from '@keyward/testing';
import { activateAsRotation, IntakeHarness, newTenant, rejectAsRotation, SERVICE, sleep, startIntake } from './intake-harness';

describe('intake: submitting a key', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake();
  });
  afterAll(async () => {
    await h?.close();
  });

  const submit = (tenantId: string, apiKey: unknown, prefer?: string) => {
    const req = h.http().put(`/v1/tenants/${tenantId}/pleo/key`).set('Authorization', SERVICE);
    if (prefer) req.set('Prefer', prefer);
    return req.send({ apiKey });
  };

  it('stores a pasted key as pending, records the submission and publishes exactly key.submitted', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const res = await submit(tenant, `  ${key}\n`).set('X-Correlation-Id', 'corr-submit-0001').expect(202);

    expect(res.body).toEqual({
      submissionId: expect.any(String),
      credentialId: expect.any(String),
      status: 'pending_validation',
      key: { last4: key.slice(-4), masked: `••••••••${key.slice(-4)}` },
      submittedAt: expect.any(String),
    });
    expect(res.headers['x-correlation-id']).toBe('corr-submit-0001');
    expect(res.headers.location).toBe(`/v1/tenants/${tenant}/pleo/submissions/${res.body.submissionId}`);

    const event = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenant);
    expect(event).toMatchObject({ producer: 'intake', correlationId: 'corr-submit-0001', tenantId: tenant });
    expect(event.causationId).toBeUndefined();
    expect(event.data).toEqual({
      submissionId: res.body.submissionId,
      credentialId: res.body.credentialId,
      secretVersionId: res.body.credentialId,
      last4: key.slice(-4),
      replacing: false,
    });
    await sleep(300);
    expect(h.tap.events.filter((e) => e.tenantId === tenant).map((e) => e.type)).toEqual(['key.submitted']);

    const versions = await h.db.query<{ version_id: string; stages: string[] }>('SELECT version_id, stages FROM secret_versions WHERE tenant_id = $1', [tenant]);
    expect(versions).toEqual([{ version_id: res.body.credentialId, stages: ['AWSPENDING'] }]);
    const audit = await h.db.query<{ actor: string; action: string; credential_id: string }>('SELECT actor, action, credential_id FROM audit_log WHERE tenant_id = $1', [tenant]);
    expect(audit).toEqual([{ actor: 'token:dev', action: 'key.submitted', credential_id: res.body.credentialId }]);
  });

  it('lets the newest submission win: older pending ones become superseded', async () => {
    const tenant = newTenant();
    const first = (await submit(tenant, canaryKey('first')).expect(202)).body;
    const second = (await submit(tenant, canaryKey('second')).expect(202)).body;

    const old = await h.http().get(`/v1/tenants/${tenant}/pleo/submissions/${first.submissionId}`).set('Authorization', SERVICE).expect(200);
    expect(old.body.status).toBe('superseded');
    const newest = await h.http().get(`/v1/tenants/${tenant}/pleo/submissions/${second.submissionId}`).set('Authorization', SERVICE).expect(200);
    expect(newest.body.status).toBe('pending_validation');
    await eventually(() => h.tap.ofType('key.submitted', tenant).length === 2, 10_000, 'two key.submitted');
  });

  it('answers a repeat of the pending key with the same submission, storing nothing new', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const first = (await submit(tenant, key).expect(202)).body;
    const again = (await submit(tenant, key).expect(202)).body;
    expect(again.submissionId).toBe(first.submissionId);
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(1);
  });

  it('stores a repeat of the pending key anew once that submission was parked or revoked, and refuses it once compromised', async () => {
    const repeatAfter = async (change: (pending: { submissionId: string; credentialId: string; tenant: string }) => Promise<unknown>) => {
      const tenant = newTenant();
      const key = canaryKey();
      const first = (await submit(tenant, key).expect(202)).body;
      await change({ ...first, tenant });
      return { first, again: await submit(tenant, key) };
    };
    // The validator gave up on it: a paste of the same key is a new try, not the parked submission again.
    const parked = await repeatAfter((p) => attemptsAsValidator(h.db, { tenantId: p.tenant, credentialId: p.credentialId, attempts: 9, lastErrorCode: 'pleo_unreachable', parked: true }));
    expect(parked.again.status).toBe(202);
    expect(parked.again.body.submissionId).not.toBe(parked.first.submissionId);
    // Revoked by an uninstall: it can never become active, so the same key is stored again.
    const uninstalled = await repeatAfter((p) => revocationAsIntake(h.db, { tenantId: p.tenant, credentialId: p.credentialId, reason: 'uninstalled' }));
    expect(uninstalled.again.status).toBe(202);
    expect(uninstalled.again.body.submissionId).not.toBe(uninstalled.first.submissionId);
    // Reported compromised while pending: refused before it could count as a repeat.
    const compromised = await repeatAfter((p) => revocationAsIntake(h.db, { tenantId: p.tenant, credentialId: p.credentialId, reason: 'compromised' }));
    expect(compromised.again.status).toBe(422);
    expect(compromised.again.body.error.code).toBe('key_previously_compromised');
  });

  it('creates no new version for the key that is already active and answers with the current state', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const first = (await submit(tenant, key).expect(202)).body;
    await activateAsRotation(h, first.submissionId);

    const res = await submit(tenant, key).expect(200);
    expect(res.body).toMatchObject({ submissionId: first.submissionId, credentialId: first.credentialId, status: 'accepted' });
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(1);
    expect(await h.db.query('SELECT 1 FROM secret_versions WHERE tenant_id = $1', [tenant])).toHaveLength(1);
    await sleep(300);
    expect(h.tap.ofType('key.submitted', tenant)).toHaveLength(1);
  });

  it('asks for the active key to be checked again when it is pasted again while the connection needs reconnecting', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const first = (await submit(tenant, key).expect(202)).body;
    const credentialId = await activateAsRotation(h, first.submissionId);
    // The monitor found scopes missing; the customer re-granted them at Pleo and pastes the same key.
    await healthAsMonitor(h.db, { tenantId: tenant, credentialId, state: 'reconnect_required', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });

    const res = await submit(tenant, key).expect(200);
    expect(res.body).toMatchObject({ submissionId: first.submissionId, credentialId, status: 'accepted' });
    const request = await h.tap.waitFor('connection.check_requested', (e) => e.tenantId === tenant);
    expect(request.data).toEqual({ credentialId });
    expect((await h.db.query<{ action: string }>('SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY seq', [tenant])).map((e) => e.action)).toEqual([
      'key.submitted',
      'key.revalidation_requested',
    ]);
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(1);

    // A healthy connection is not checked again for a repeat of its key.
    await healthAsMonitor(h.db, { tenantId: tenant, credentialId, state: 'healthy' });
    await submit(tenant, key).expect(200);
    await sleep(300);
    expect(h.tap.ofType('connection.check_requested', tenant)).toHaveLength(1);
  });

  it('marks a replacement of an active key as replacing', async () => {
    const tenant = newTenant();
    const first = (await submit(tenant, canaryKey('a')).expect(202)).body;
    await activateAsRotation(h, first.submissionId);
    const second = (await submit(tenant, canaryKey('b')).expect(202)).body;
    const event = await h.tap.waitFor('key.submitted', (e) => e.data.submissionId === second.submissionId);
    expect(event.data.replacing).toBe(true);
  });

  it.each([
    ['', 'key_empty'],
    [undefined, 'key_empty'],
    ['Bearer pleo_0123456789abcdefghij', 'key_has_auth_scheme'],
    ['pleo_0123456789 abcdefghij', 'key_inner_whitespace'],
    ['pleo_0123456789\u0007abcdefghij', 'key_control_characters'],
    ['short', 'key_too_short'],
    ['x'.repeat(600), 'key_too_long'],
    [12345, 'invalid_request'],
  ])('refuses %j with %s and stores nothing', async (apiKey, code) => {
    const tenant = newTenant();
    const res = await h
      .http()
      .put(`/v1/tenants/${tenant}/pleo/key`)
      .set('Authorization', SERVICE)
      .send(apiKey === undefined ? {} : { apiKey })
      .expect(400);
    expect(res.body).toEqual({ error: { code, message: expect.any(String), action: expect.any(String) } });
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(0);
    expect(await h.db.query('SELECT 1 FROM secrets WHERE tenant_id = $1', [tenant])).toHaveLength(0);
  });

  it('with Prefer: wait, answers 200 with the outcome when it comes in time', async () => {
    const tenant = newTenant();
    const started = Date.now();
    const pending = submit(tenant, canaryKey(), 'wait=10').then((res) => res);
    const event = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenant);
    await sleep(300);
    await activateAsRotation(h, event.data.submissionId);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers['preference-applied']).toBe('wait=10');
    expect(res.body).toMatchObject({ submissionId: event.data.submissionId, status: 'accepted' });
    expect(Date.now() - started).toBeLessThan(9_000);
  });

  it('with Prefer: wait, answers 200 with the rejection, reason and what to do', async () => {
    const tenant = newTenant();
    const pending = submit(tenant, canaryKey(), 'wait=10').then((res) => res);
    const event = await h.tap.waitFor('key.submitted', (e) => e.tenantId === tenant);
    await rejectAsRotation(h, event.data.submissionId, 'insufficient_scopes', ['export-jobs:write']);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'rejected',
      reason: 'insufficient_scopes',
      missingScopes: ['export-jobs:write'],
      message: 'This API key is missing permissions the integration needs.',
      action: expect.stringContaining('approve all requested permissions'),
    });
  });

  it('with Prefer: wait, answers 202 pending when the outcome does not come in time', async () => {
    const tenant = newTenant();
    const started = Date.now();
    const res = await submit(tenant, canaryKey(), 'wait=1').expect(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(res.headers['preference-applied']).toBe('wait=1');
    expect(res.body.status).toBe('pending_validation');
  });

  it('shows why a submission is still pending when Pleo is unreachable', async () => {
    const tenant = newTenant();
    const { submissionId, credentialId } = (await submit(tenant, canaryKey()).expect(202)).body;
    await attemptsAsValidator(h.db, { credentialId, tenantId: tenant, attempts: 2, lastErrorCode: 'pleo_unreachable' });
    const res = await h.http().get(`/v1/tenants/${tenant}/pleo/submissions/${submissionId}`).set('Authorization', SERVICE).expect(200);
    expect(res.body).toMatchObject({ status: 'pending_validation', lastError: { code: 'pleo_unreachable' } });
  });

  it('answers 404 for a submission of another tenant or an unknown id', async () => {
    const tenant = newTenant();
    const { submissionId } = (await submit(tenant, canaryKey()).expect(202)).body;
    const other = await h.http().get(`/v1/tenants/${newTenant()}/pleo/submissions/${submissionId}`).set('Authorization', SERVICE).expect(404);
    expect(other.body.error.code).toBe('submission_not_found');
    await h.http().get(`/v1/tenants/${tenant}/pleo/submissions/not-a-uuid`).set('Authorization', SERVICE).expect(404);
  });

  it('refuses a key that was reported compromised for the tenant', async () => {
    const tenant = newTenant();
    const key = canaryKey();
    const { submissionId } = (await submit(tenant, key).expect(202)).body;
    await activateAsRotation(h, submissionId);
    await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', SERVICE).expect(200);
    const res = await submit(tenant, key).expect(422);
    expect(res.body.error.code).toBe('key_previously_compromised');
  });
});
