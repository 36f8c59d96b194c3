import { randomUUID } from 'node:crypto';
import { ApiKey } from '@keyward/key-material';
import { canaryKey, eventually } from '@keyward/testing';
import { RotationHarness, Submitted } from './rotation-harness';

/**
 * The credential lifecycle as a tenant and an operator observe it: connection and credential
 * rows, secret labels, readable keys, published events and the audit chain. Shared by every
 * secret backend (see `lifecycle.<backend>.test.ts`).
 */
export function lifecycleScenarios(harness: () => RotationHarness): void {
  const companyA = `company-${randomUUID()}`;
  let h: RotationHarness;
  beforeAll(() => {
    h = harness();
  });

  /** Every scenario ends with an intact audit chain written by rotation. */
  async function expectAuditChainIntact(tenantId: string): Promise<void> {
    const report = await h.verifyAudit(tenantId);
    expect(report).toMatchObject({ ok: true });
    expect(report.entries).toBeGreaterThan(0);
  }

  async function activeKey(tenantId: string, companyId = companyA): Promise<Submitted> {
    const s = await h.submit(tenantId);
    await h.deliver(h.validated(s, companyId));
    return s;
  }

  it('first activation: the connection binds to the company and the key becomes current and readable', async () => {
    const tenant = h.newTenant();
    const a = await h.submit(tenant);
    const validated = h.validated(a, companyA);
    await h.deliver(validated);

    expect(await h.connection(tenant)).toMatchObject({
      status: 'active',
      activeCredentialId: a.credentialId,
      companyId: companyA,
      subjectType: 'company',
      errorCode: null,
    });
    expect(await h.credential(a.credentialId)).toMatchObject({
      status: 'active',
      last4: a.last4,
      companyId: companyA,
      scopes: ['accounts:read', 'export-jobs:write'],
      submissionId: a.submissionId,
    });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: ['AWSCURRENT'] });
    expect((await h.reader.readForUse(tenant, a.credentialId)).reveal()).toBe(a.raw);

    const activated = await eventually(() => h.published('key.activated', tenant)[0], 15_000, 'key.activated');
    expect(activated).toMatchObject({ causationId: validated.id, correlationId: validated.correlationId, data: { credentialId: a.credentialId, companyId: companyA } });
    expect(activated.data).not.toHaveProperty('previousCredentialId');
    const [entry] = await h.audit(tenant);
    expect(entry).toMatchObject({ actor: 'service:rotation', action: 'credential.activated', credentialId: a.credentialId, last4: a.last4, correlationId: validated.correlationId });
    await expectAuditChainIntact(tenant);
  });

  it('replacement for the same company: the new key becomes current, the previous one is invalidated as replaced', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    await h.deliver(h.validated(b, companyA));

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId, companyId: companyA });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'replaced' });
    expect(await h.credential(b.credentialId)).toMatchObject({ status: 'active' });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: [], [b.credentialId]: ['AWSCURRENT'] });
    expect((await h.reader.readForUse(tenant, b.credentialId)).reveal()).toBe(b.raw);

    await eventually(() => h.published('key.invalidated', tenant).length === 1, 15_000, 'key.invalidated');
    const activations = await eventually(() => (h.published('key.activated', tenant).length === 2 ? h.published('key.activated', tenant) : undefined), 15_000, 'two activations');
    expect(activations.find((e) => e.data.credentialId === b.credentialId)?.data.previousCredentialId).toBe(a.credentialId);
    expect(h.published('key.invalidated', tenant)[0].data).toEqual({ credentialId: a.credentialId, reason: 'replaced' });
    expect((await h.audit(tenant)).map((e) => e.action)).toEqual(['credential.activated', 'credential.activated', 'credential.invalidated']);
    expect((await h.audit(tenant)).at(-1)).toMatchObject({ credentialId: a.credentialId, last4: a.last4, details: expect.objectContaining({ replacedBy: b.credentialId }) });
    await expectAuditChainIntact(tenant);
  });

  it('replacement rejected while active: the old key stays current, readable and active', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    await h.deliver(h.rejected(b, 'company_mismatch'));

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: a.credentialId, errorCode: null });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'active' });
    expect(await h.credential(b.credentialId)).toMatchObject({
      status: 'rejected',
      rejectionReason: 'company_mismatch',
      rejectionDetail: { missingScopes: [], message: 'rejected: company_mismatch' },
    });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: ['AWSCURRENT'], [b.credentialId]: [] });
    expect((await h.reader.readForUse(tenant, a.credentialId)).reveal()).toBe(a.raw);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.published('key.activated', tenant)).toHaveLength(1);
    expect(h.published('key.invalidated', tenant)).toHaveLength(0);
    await expectAuditChainIntact(tenant);
  });

  it('first key rejected: the connection is not_connected and shows the rejection', async () => {
    const tenant = h.newTenant();
    const a = await h.submit(tenant);
    await h.deliver(h.rejected(a, 'insufficient_scopes', ['export-jobs:write']));

    expect(await h.connection(tenant)).toMatchObject({
      status: 'not_connected',
      activeCredentialId: null,
      companyId: null,
      errorCode: 'insufficient_scopes',
      errorDetail: { credentialId: a.credentialId, missingScopes: ['export-jobs:write'], message: 'rejected: insufficient_scopes' },
    });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'rejected', rejectionReason: 'insufficient_scopes' });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: [] });
    await expectAuditChainIntact(tenant);
  });

  it.each([
    ['the newest validation finishes first', true],
    ['the older validation finishes first', false],
  ])('concurrent replacements: only the newest wins when %s', async (_name, newestFirst) => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    const c = await h.submit(tenant);
    const olderValidated = h.validated(b, companyA);
    const newestValidated = h.validated(c, companyA);
    for (const event of newestFirst ? [newestValidated, olderValidated] : [olderValidated, newestValidated]) await h.deliver(event);

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: c.credentialId });
    expect(await h.credential(b.credentialId)).toBeNull();
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'replaced' });
    expect(await h.currentVersion(tenant)).toBe(c.credentialId);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.published('key.activated', tenant).map((e) => e.data.credentialId)).toEqual([a.credentialId, c.credentialId]);
    await expectAuditChainIntact(tenant);
  });

  it('concurrent replacements delivered at the same moment: the newest wins', async () => {
    const tenant = h.newTenant();
    await activeKey(tenant);
    const pending = [await h.submit(tenant), await h.submit(tenant), await h.submit(tenant)];
    const events = pending.map((s) => h.validated(s, companyA)).reverse();
    await Promise.all(events.map((e) => h.deliver(e)));

    const newest = pending[pending.length - 1];
    expect(await h.connection(tenant)).toMatchObject({ activeCredentialId: newest.credentialId });
    expect(await h.currentVersion(tenant)).toBe(newest.credentialId);
    for (const older of pending.slice(0, -1)) expect(await h.credential(older.credentialId)).toBeNull();
    await expectAuditChainIntact(tenant);
  });

  it('duplicate key.validated (same event twice, and a second event for the same credential) applies once', async () => {
    const tenant = h.newTenant();
    const a = await h.submit(tenant);
    const validated = h.validated(a, companyA);
    await h.deliver(validated);
    await h.deliver(validated);
    await h.deliver(h.validated(a, companyA));

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: a.credentialId });
    await new Promise((r) => setTimeout(r, 300));
    expect(h.published('key.activated', tenant)).toHaveLength(1);
    expect((await h.audit(tenant)).map((e) => e.action)).toEqual(['credential.activated']);
    await expectAuditChainIntact(tenant);
  });

  it.each([
    ['a first activation', false],
    ['a replacement', true],
  ])('crash between label move and commit, then redelivery, finishes %s', async (_name, replacing) => {
    const tenant = h.newTenant();
    const a = replacing ? await activeKey(tenant) : null;
    const b = await h.submit(tenant);
    // The label moved, then the process died: the database still says nothing happened.
    await h.store.promote(tenant, b.credentialId, a?.credentialId ?? null);
    expect(await h.currentVersion(tenant)).toBe(b.credentialId);
    expect((await h.connection(tenant))?.activeCredentialId ?? null).toBe(a?.credentialId ?? null);

    await h.deliver(h.validated(b, companyA));

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId });
    expect(await h.credential(b.credentialId)).toMatchObject({ status: 'active' });
    if (a) expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'replaced' });
    expect(await h.currentVersion(tenant)).toBe(b.credentialId);
    const activated = await eventually(() => h.published('key.activated', tenant).find((e) => e.data.credentialId === b.credentialId), 15_000, 'key.activated');
    expect(activated.data.previousCredentialId).toBe(a?.credentialId);
    await expectAuditChainIntact(tenant);
  });

  it('a label left on an older pending key by a crashed activation is taken over by the newest', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    await h.store.promote(tenant, b.credentialId, a.credentialId); // B's activation crashed before commit…
    const c = await h.submit(tenant); // …and a newer key superseded B.
    await h.deliver(h.validated(b, companyA));
    expect(await h.credential(b.credentialId)).toBeNull();

    await h.deliver(h.validated(c, companyA));
    expect(h.logs.lines().some((l) => l.includes('taking it over') && l.includes(c.credentialId))).toBe(true);
    expect(await h.connection(tenant)).toMatchObject({ activeCredentialId: c.credentialId });
    expect(await h.currentVersion(tenant)).toBe(c.credentialId);
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'replaced' });
    await expectAuditChainIntact(tenant);
  });

  it('compromise while active: the key is disabled everywhere; a new key then activates and the old never returns', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const compromised = await h.compromise(tenant, a.credentialId);

    expect(await h.connection(tenant)).toMatchObject({ status: 'disabled', activeCredentialId: null, errorCode: 'key_compromised', companyId: companyA });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'compromised' });
    expect(await h.labels(tenant)).toMatchObject({ labels: { [a.credentialId]: [] }, disabled: [a.credentialId] });
    await expect(h.reader.readForUse(tenant, a.credentialId)).rejects.toMatchObject({ code: 'revoked' });
    await expect(h.validatorStore.getValue(tenant, { versionId: a.credentialId })).rejects.toMatchObject({ code: 'disabled' });
    await eventually(() => h.published('connection.disabled', tenant).length === 1, 15_000, 'connection.disabled');
    await eventually(() => h.published('key.invalidated', tenant).length === 1, 15_000, 'key.invalidated');
    expect(h.published('key.invalidated', tenant)[0]).toMatchObject({ causationId: compromised.id, data: { credentialId: a.credentialId, reason: 'compromised' } });
    expect(h.published('connection.disabled', tenant)[0].data.reason).toBe('key_compromised');

    const b = await activeKey(tenant);
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId, errorCode: null });
    expect(await h.currentVersion(tenant)).toBe(b.credentialId);
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'compromised' });
    expect((await h.labels(tenant)).disabled).toEqual([a.credentialId]);
    const activated = await eventually(() => h.published('key.activated', tenant).find((e) => e.data.credentialId === b.credentialId), 15_000, 'key.activated');
    expect(activated.data).not.toHaveProperty('previousCredentialId');
    // A late validation of the compromised key changes nothing.
    await h.deliver(h.validated(a, companyA));
    expect(await h.connection(tenant)).toMatchObject({ activeCredentialId: b.credentialId });
    await expectAuditChainIntact(tenant);
  });

  it('compromise while a replacement is pending: the pending key continues and becomes active when validated', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    await h.compromise(tenant, a.credentialId);
    expect(await h.connection(tenant)).toMatchObject({ status: 'disabled', activeCredentialId: null });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: [], [b.credentialId]: ['AWSPENDING'] });

    await h.deliver(h.validated(b, companyA));
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: [], [b.credentialId]: ['AWSCURRENT'] });
    expect((await h.reader.readForUse(tenant, b.credentialId)).reveal()).toBe(b.raw);
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'compromised' });
    await expectAuditChainIntact(tenant);
  });

  it('a replacement decided before the compromise of the key it replaces is handled: that key goes out as compromised all the same', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    // The customer reports the active key compromised and pastes a new one at once; rotation takes
    // the new key's verdict before the report (two replicas, one of them busy).
    const report = await h.reportCompromise(tenant, a.credentialId);
    const b = await h.submit(tenant);
    await h.deliver(h.validated(b, companyA));
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'compromised' });
    expect(await h.labels(tenant)).toMatchObject({ labels: { [a.credentialId]: [], [b.credentialId]: ['AWSCURRENT'] }, disabled: [a.credentialId] });
    await expect(h.validatorStore.getValue(tenant, { versionId: a.credentialId })).rejects.toMatchObject({ code: 'disabled' });

    // The report, handled afterwards, finds the key out of service: the connection keeps its new key.
    await h.deliver(report);
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId });
    await eventually(() => h.published('key.activated', tenant).some((e) => e.data.credentialId === b.credentialId), 15_000, 'key.activated');
    await eventually(() => h.published('key.invalidated', tenant).length === 1, 15_000, 'key.invalidated');
    expect(h.published('key.invalidated', tenant)[0].data).toEqual({ credentialId: a.credentialId, reason: 'compromised' });
    expect(h.published('connection.disabled', tenant)).toHaveLength(0);
    // The report finds its work done by the activation (as a repeated report would): nothing more to record.
    expect((await h.audit(tenant)).map((e) => [e.action, e.details?.reason])).toEqual([
      ['credential.activated', undefined],
      ['credential.activated', undefined],
      ['credential.invalidated', 'compromised'],
    ]);
    await expectAuditChainIntact(tenant);
  });

  it('uninstall: credentials invalidated, secret deletion scheduled, audit kept; a later reinstall restores and activates', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    await h.uninstall(tenant);

    expect(await h.connection(tenant)).toMatchObject({ status: 'uninstalled', activeCredentialId: null });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'uninstalled' });
    expect(await h.credential(b.credentialId)).toBeNull();
    const secret = await h.labels(tenant);
    expect(secret.labels).toEqual({ [a.credentialId]: [], [b.credentialId]: [] });
    const windowMs = h.config.secrets.recoveryWindowDays * 86_400_000;
    expect(Math.abs(secret.deletionScheduledFor!.getTime() - (Date.now() + windowMs))).toBeLessThan(60 * 60_000);
    await eventually(() => h.published('key.invalidated', tenant).some((e) => e.data.reason === 'uninstalled'), 15_000, 'key.invalidated');
    expect((await h.audit(tenant)).map((e) => e.action)).toEqual(['credential.activated', 'credential.invalidated', 'connection.uninstalled']);
    await expectAuditChainIntact(tenant);

    // The pending key's validation arrives late: revoked, so nothing happens.
    await h.deliver(h.validated(b, companyA));
    expect(await h.connection(tenant)).toMatchObject({ status: 'uninstalled', activeCredentialId: null });

    // Reinstall, even for another company: the binding was released by the uninstall.
    const companyB = `company-${randomUUID()}`;
    const c = await activeKey(tenant, companyB);
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: c.credentialId, companyId: companyB });
    expect((await h.labels(tenant)).deletionScheduledFor).toBeNull();
    expect((await h.reader.readForUse(tenant, c.credentialId)).reveal()).toBe(c.raw);
    await expectAuditChainIntact(tenant);
  });

  it('a rejected reinstall after an uninstall leaves the uninstalled keys scheduled for deletion', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    await h.uninstall(tenant);
    const b = await h.submit(tenant); // storing a new key needs the secret back, so the deletion is cancelled…
    expect((await h.labels(tenant)).deletionScheduledFor).toBeNull();

    await h.deliver(h.rejected(b, 'invalid_key')); // …and Pleo refuses the key: nothing keeps the secret alive.
    const secret = await h.labels(tenant);
    expect(secret.deletionScheduledFor).not.toBeNull();
    expect(secret.labels).toEqual({ [a.credentialId]: [], [b.credentialId]: [] });
    expect(await h.connection(tenant)).toMatchObject({ status: 'not_connected', activeCredentialId: null, errorCode: 'invalid_key' });
    expect((await h.audit(tenant)).at(-1)).toMatchObject({ action: 'credential.rejected', details: expect.objectContaining({ secretDeletionScheduledFor: expect.any(String) }) });

    // A second rejected attempt again cancels and then reschedules the deletion.
    const c = await h.submit(tenant);
    await h.deliver(h.rejected(c, 'invalid_key'));
    expect((await h.labels(tenant)).deletionScheduledFor).not.toBeNull();
    await expectAuditChainIntact(tenant);
  });

  it('a compromise handled after the uninstall still disables the key, and the secret stays scheduled for deletion', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const compromised = await h.reportCompromise(tenant, a.credentialId); // POST …/compromise
    await h.uninstall(tenant); // DELETE …/connection, whose event rotation handles first
    expect((await h.labels(tenant)).deletionScheduledFor).not.toBeNull();

    await h.deliver(compromised);
    const secret = await h.labels(tenant);
    expect(secret.disabled).toEqual([a.credentialId]);
    expect(secret.deletionScheduledFor).not.toBeNull();
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'compromised' });
    expect(await h.connection(tenant)).toMatchObject({ status: 'uninstalled', activeCredentialId: null });
    expect((await h.audit(tenant)).at(-1)).toMatchObject({ action: 'credential.compromised', details: expect.objectContaining({ secretVersion: 'disabled' }) });

    // A reinstall restores the secret with A disabled: its value is gone for good, even for the role that may read values.
    const b = await activeKey(tenant);
    await expect(h.validatorStore.getValue(tenant, { versionId: a.credentialId })).rejects.toMatchObject({ code: 'disabled' });
    expect((await h.reader.readForUse(tenant, b.credentialId)).reveal()).toBe(b.raw);
    await expectAuditChainIntact(tenant);
  });

  it('crash between scheduling deletion and commit during an uninstall, then redelivery, finishes the uninstall', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    await h.store.retire(tenant, a.credentialId);
    await h.store.scheduleDeletion(tenant, h.config.secrets.recoveryWindowDays);
    await h.uninstall(tenant);

    expect(await h.connection(tenant)).toMatchObject({ status: 'uninstalled', activeCredentialId: null });
    expect(await h.credential(a.credentialId)).toMatchObject({ status: 'invalidated', invalidatedReason: 'uninstalled' });
    expect((await h.labels(tenant)).deletionScheduledFor).not.toBeNull();
    await expectAuditChainIntact(tenant);
  });

  it('AWSCURRENT on a version keyward never issued: no activation, the event is retried and then parked', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    // Someone moved the label outside keyward, onto a version without a submission.
    const stray = randomUUID();
    await h.intakeStore.putPending(tenant, stray, ApiKey.fromTrusted(canaryKey('stray')));
    await h.store.promote(tenant, stray, a.credentialId);
    const validated = h.validated(b, companyA);
    await h.publish(validated);
    await eventually(() => h.logs.lines().some((l) => l.includes(validated.id) && l.includes('parked')), 20_000, 'the event parked');

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: a.credentialId });
    expect(await h.credential(b.credentialId)).toBeNull();
    expect(await h.currentVersion(tenant)).toBe(stray);
  });

  it('a validated key of another company than the bound one is parked and changes nothing', async () => {
    const tenant = h.newTenant();
    const a = await activeKey(tenant);
    const b = await h.submit(tenant);
    const foreign = h.validated(b, `company-${randomUUID()}`);
    await h.publish(foreign);
    await eventually(() => h.logs.lines().some((l) => l.includes(foreign.id) && l.includes('parked')), 15_000, 'the event parked');
    expect(await h.db.query('SELECT 1 FROM inbox WHERE event_id = $1', [foreign.id])).toHaveLength(0);
    expect(await h.connection(tenant)).toMatchObject({ activeCredentialId: a.credentialId, companyId: companyA });
    expect(await h.currentVersion(tenant)).toBe(a.credentialId);
    expect(await h.credential(b.credentialId)).toBeNull();
  });

  it('no key material in any published event, log line or rotation-owned row', async () => {
    const everything = h.tap.raw.join('\n') + h.logs.text();
    const rows = JSON.stringify([
      await h.db.query('SELECT * FROM connections'),
      await h.db.query('SELECT * FROM credentials'),
      await h.db.query('SELECT * FROM audit_log'),
      await h.db.query('SELECT * FROM outbox'),
    ]);
    expect(h.submitted.length).toBeGreaterThan(10);
    for (const s of h.submitted) {
      expect(everything).not.toContain(s.raw);
      expect(rows).not.toContain(s.raw);
    }
  });
}
