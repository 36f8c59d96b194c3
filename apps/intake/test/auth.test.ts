import { randomBytes } from 'node:crypto';
import { secretRegistry } from '@keyward/observability';
import { canaryKey } from '@keyward/testing';
import { activateAsRotation, expiredSession, IntakeHarness, mintSession, newTenant, OPS, SERVICE, startIntake } from './intake-harness';

describe('intake: auth and tenant isolation', () => {
  let h: IntakeHarness;
  beforeAll(async () => {
    h = await startIntake({ KEYWARD_INSTALL_SESSION_TTL_SECONDS: '600' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const errorCode = (res: { body: { error?: { code?: string } } }) => res.body.error?.code;

  it('mints an install session for one tenant, storing only its hash', async () => {
    const tenant = newTenant();
    const before = Date.now();
    const res = await h.http().post('/v1/install-sessions').set('Authorization', OPS).send({ tenantId: tenant }).expect(201);
    expect(res.body).toEqual({
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      tenantId: tenant,
      expiresAt: expect.any(String),
      connectUrl: `${h.config.connect.publicUrl}/connect#session=${res.body.token}`,
      returnUrl: null,
    });
    const ttl = new Date(res.body.expiresAt).getTime() - before;
    expect(ttl).toBeGreaterThan(599_000);
    expect(ttl).toBeLessThan(605_000);
    expect(res.headers['cache-control']).toBe('no-store');
    const rows = await h.db.query<{ row: string }>('SELECT t::text AS row FROM install_sessions t WHERE tenant_id = $1', [tenant]);
    expect(rows).toHaveLength(1);
    expect(rows[0].row).not.toContain(res.body.token);
    expect(h.logs.text()).not.toContain(res.body.token);
  });

  it('refuses to mint for a malformed tenant id or with unknown fields', async () => {
    expect(errorCode(await h.http().post('/v1/install-sessions').set('Authorization', SERVICE).send({ tenantId: 'a/b' }).expect(400))).toBe('invalid_tenant_id');
    expect(errorCode(await h.http().post('/v1/install-sessions').set('Authorization', SERVICE).send({ tenantId: 'a', ttl: 99 }).expect(400))).toBe('unknown_fields');
    expect(errorCode(await h.http().post('/v1/install-sessions').set('Authorization', SERVICE).send({}).expect(400))).toBe('invalid_request');
    // No KEYWARD_CONNECT_RETURN_URLS here: no return address is acceptable.
    expect(errorCode(await h.http().post('/v1/install-sessions').set('Authorization', SERVICE).send({ tenantId: 'a', returnUrl: 'https://evil.example/' }).expect(400))).toBe('return_url_not_allowed');
  });

  it('uses a session up once its key is accepted: the same key reads as connected, another is refused', async () => {
    const tenant = newTenant();
    const token = await mintSession(h, tenant);
    const key = canaryKey('used');
    const submitted = await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', `Bearer ${token}`).send({ apiKey: key }).expect(202);
    expect((await h.http().get('/v1/install-sessions/current').set('Authorization', `Bearer ${token}`).expect(200)).body).toMatchObject({ tenantId: tenant, returnUrl: null });
    await activateAsRotation(h, submitted.body.submissionId);
    expect(errorCode(await h.http().get('/v1/install-sessions/current').set('Authorization', `Bearer ${token}`).expect(409))).toBe('install_session_used');
    await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', `Bearer ${token}`).send({ apiKey: key }).expect(200);
    expect(
      errorCode(
        await h
          .http()
          .put(`/v1/tenants/${tenant}/pleo/key`)
          .set('Authorization', `Bearer ${token}`)
          .send({ apiKey: canaryKey('next') })
          .expect(409),
      ),
    ).toBe('install_session_used');
    await h.http().get(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', `Bearer ${token}`).expect(200);
  });

  it('lets an install session submit a key and read status for its tenant', async () => {
    const tenant = newTenant();
    const token = await mintSession(h, tenant);
    const submitted = await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', `Bearer ${token}`).send({ apiKey: canaryKey() }).expect(202);
    await h.http().get(`/v1/tenants/${tenant}/pleo/submissions/${submitted.body.submissionId}`).set('Authorization', `Bearer ${token}`).expect(200);
    const connection = await h.http().get(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', `Bearer ${token}`).expect(200);
    expect(connection.body.status).toBe('pending_validation');
    const [submission] = await h.db.query<{ submitted_by: string }>('SELECT submitted_by FROM submissions WHERE id = $1', [submitted.body.submissionId]);
    expect(submission.submitted_by).toBe('install-session');
  });

  it('refuses an install session everything else for its own tenant with 403', async () => {
    const tenant = newTenant();
    const auth = `Bearer ${await mintSession(h, tenant)}`;
    expect(errorCode(await h.http().post(`/v1/tenants/${tenant}/pleo/compromise`).set('Authorization', auth).expect(403))).toBe('forbidden');
    expect(errorCode(await h.http().delete(`/v1/tenants/${tenant}/pleo/connection`).set('Authorization', auth).expect(403))).toBe('forbidden');
    expect(errorCode(await h.http().get(`/v1/tenants/${tenant}/audit`).set('Authorization', auth).expect(403))).toBe('forbidden');
    expect(errorCode(await h.http().post('/v1/install-sessions').set('Authorization', auth).send({ tenantId: tenant }).expect(403))).toBe('forbidden');
    expect(await h.db.query('SELECT 1 FROM revocations WHERE tenant_id = $1', [tenant])).toHaveLength(0);
  });

  it('refuses an install session for another tenant: 403, logged without the token, audited for the target', async () => {
    const own = newTenant('a');
    const other = newTenant('b');
    const token = await mintSession(h, own);
    const auth = `Bearer ${token}`;
    expect(errorCode(await h.http().put(`/v1/tenants/${other}/pleo/key`).set('Authorization', auth).send({ apiKey: canaryKey() }).expect(403))).toBe('forbidden');
    await h.http().get(`/v1/tenants/${other}/pleo/connection`).set('Authorization', auth).expect(403);
    await h.http().get(`/v1/tenants/${other}/pleo/submissions/00000000-0000-4000-8000-000000000000`).set('Authorization', auth).expect(403);
    await h.http().post(`/v1/tenants/${other}/pleo/compromise`).set('Authorization', auth).expect(403);

    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [other])).toHaveLength(0);
    const refusals = h.logs.lines().filter((l) => l.includes('Refused an install session acting for another tenant'));
    expect(refusals.length).toBe(4);
    expect(JSON.parse(refusals[0])).toMatchObject({ level: 'warn', sessionTenantId: own, targetTenantId: other });
    expect(h.logs.text()).not.toContain(token);
    // The target's log says it happened, once per hour and refusing tenant; the rest are counted.
    const audit = await h.db.query<{ action: string; actor: string; details: Record<string, unknown> }>(`SELECT action, actor, details FROM audit_log WHERE tenant_id = $1 ORDER BY seq`, [other]);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'access.refused', actor: 'install-session', details: { reason: 'other_tenant', sessionTenantId: own } });
    expect(await h.db.query('SELECT refusals FROM access_refusals WHERE target_tenant_id = $1 AND session_tenant_id = $2', [other, own])).toEqual([{ refusals: 4 }]);
  });

  it("bounds what a flood of refused requests writes to the targeted tenant's audit log", async () => {
    const own = newTenant('a');
    const other = newTenant('b');
    const auth = `Bearer ${await mintSession(h, own)}`;
    const path = `/v1/tenants/${other}/pleo/connection`;
    for (let i = 0; i < 300; i += 30) await Promise.all(Array.from({ length: 30 }, () => h.http().get(path).set('Authorization', auth).expect(403)));

    expect(await h.db.query(`SELECT action FROM audit_log WHERE tenant_id = $1`, [other])).toEqual([{ action: 'access.refused' }]);
    expect(await h.db.query('SELECT refusals FROM access_refusals WHERE target_tenant_id = $1', [other])).toEqual([{ refusals: 300 }]);
    const warned = h.logs.lines().filter((l) => l.includes('Refused an install session acting for another tenant') && l.includes(other) && l.includes('"warn"'));
    expect(warned).toHaveLength(1);
    // Reading the log stays cheap for the target: one entry, and a verified chain.
    const read = await h.http().get(`/v1/tenants/${other}/audit`).set('Authorization', SERVICE).expect(200);
    expect(read.body).toMatchObject({ entries: [{ action: 'access.refused' }], nextCursor: null, chain: { ok: true, entries: 1 } });
  });

  it('registers nothing an unauthenticated request carries: no eviction, no blanked log fields', async () => {
    const own = newTenant('own-tenant');
    const other = newTenant('b');
    const before = secretRegistry.size;
    // Random bearer tokens and credential-named query values from anyone.
    for (let i = 0; i < 200; i++) {
      await h
        .http()
        .get(`/v1/tenants/${other}/pleo/connection`)
        .set('Authorization', `Bearer ${randomBytes(75).toString('base64url')}`)
        .expect(401);
    }
    expect(errorCode(await h.http().get(`/v1/tenants/${other}/pleo/connection?token=${own}`).expect(400))).toBe('key_in_query_rejected');
    expect(secretRegistry.size).toBe(before);
    // The attacker's string is still readable where an operator needs it.
    const session = await mintSession(h, own);
    await h.http().get(`/v1/tenants/${other}/pleo/connection`).set('Authorization', `Bearer ${session}`).expect(403);
    const refusal = h.logs.lines().filter((l) => l.includes('Refused an install session acting for another tenant') && l.includes(other));
    expect(refusal).toHaveLength(1);
    expect(JSON.parse(refusal[0])).toMatchObject({ sessionTenantId: own, targetTenantId: other });
    // An authenticated token is registered: keyward handles it.
    expect(h.logs.text()).not.toContain(session);
    expect(secretRegistry.scrub(`x ${session} y`)).toBe('x [redacted] y');
  });

  it('answers 401 for a missing, unknown or expired token', async () => {
    const tenant = newTenant();
    const path = `/v1/tenants/${tenant}/pleo/connection`;
    const missing = await h.http().get(path).expect(401);
    expect(errorCode(missing)).toBe('unauthenticated');
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(errorCode(await h.http().get(path).set('Authorization', 'Basic ZGV2Og==').expect(401))).toBe('unauthenticated');
    expect(errorCode(await h.http().get(path).set('Authorization', 'Bearer not-a-known-token-at-all').expect(401))).toBe('unauthenticated');

    const token = 'expired-session-token-0123456789abcdefghijklmno';
    await expiredSession(h, tenant, token);
    const expired = await h.http().put(`/v1/tenants/${tenant}/pleo/key`).set('Authorization', `Bearer ${token}`).send({ apiKey: canaryKey() }).expect(401);
    expect(errorCode(expired)).toBe('install_session_expired');
    expect(expired.body.error.action).toContain('again');
    expect(await h.db.query('SELECT 1 FROM submissions WHERE tenant_id = $1', [tenant])).toHaveLength(0);
  });

  it.each(['bad.tenant', 'x'.repeat(65), 'a%20b', '%C3%A9t%C3%A9'])('refuses the tenant id %j with 400 invalid_tenant_id', async (tenantId) => {
    const res = await h.http().get(`/v1/tenants/${tenantId}/pleo/connection`).set('Authorization', SERVICE).expect(400);
    expect(errorCode(res)).toBe('invalid_tenant_id');
  });
});
