import { randomUUID } from 'node:crypto';
import { createEvent } from '@keyward/contracts';
import { Metrics } from '@keyward/observability';
import { publishExternal, recordAsOwner } from '@keyward/testing';
import { RotationHarness } from './rotation-harness';

/**
 * Events on the exchange that their owner never published (security review finding 7): rotation
 * acts on the owner's record of an event — the validator's verdict, intake's uninstall request or
 * revocation — never on the message's word.
 */
describe('rotation and forged events', () => {
  const h = new RotationHarness('local');
  beforeAll(() => h.start(), 60_000);
  afterAll(() => h.stop());

  async function unconfirmedCount(type: string): Promise<number> {
    const metric = await h.app.get(Metrics).registry.getSingleMetric('keyward_events_unconfirmed_total')!.get();
    return metric.values.find((v) => v.labels.type === type)?.value ?? 0;
  }

  it('a key.validated published by hand for a pending submission activates nothing, and is counted and audited', async () => {
    const tenant = h.newTenant();
    const pending = await h.submit(tenant);
    const before = await unconfirmedCount('key.validated');
    const forged = createEvent(
      'key.validated',
      { tenantId: tenant, correlationId: `corr-${randomUUID()}`, producer: 'validator' },
      { submissionId: pending.submissionId, credentialId: pending.credentialId, companyId: 'attacker-co', subjectType: 'company', scopes: ['accounts:read', 'export-jobs:write'] },
    );
    await h.deliver(forged);

    expect(await h.connection(tenant)).toBeNull();
    expect(await h.credential(pending.credentialId)).toBeNull();
    expect(await h.currentVersion(tenant)).toBeNull();
    expect(await unconfirmedCount('key.validated')).toBe(before + 1);
    expect((await h.audit(tenant)).map((e) => [e.action, e.credentialId, e.details.eventId])).toEqual([['event.unconfirmed', pending.credentialId, forged.id]]);

    // The validator's own verdict for the same submission still decides.
    await h.deliver(h.validated(pending, 'company-real'));
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: pending.credentialId, companyId: 'company-real' });
  });

  it('a copy of a real key.validated with another company binds the company the validator recorded', async () => {
    const tenant = h.newTenant();
    const pending = await h.submit(tenant);
    const real = createEvent(
      'key.validated',
      { tenantId: tenant, correlationId: `corr-${randomUUID()}`, producer: 'validator' },
      {
        submissionId: pending.submissionId,
        credentialId: pending.credentialId,
        companyId: 'company-recorded',
        subjectType: 'company',
        scopes: ['accounts:read', 'export-jobs:write'],
      },
    );
    await recordAsOwner(h.db, real);
    // Same id, doctored data, published before the relay's copy.
    const doctored = { ...real, data: { ...real.data, companyId: 'attacker-co', scopes: ['everything:write'] } };
    await publishExternal(h.prefix, doctored);
    await h.handled(doctored);

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', companyId: 'company-recorded' });
    expect(await h.credential(pending.credentialId)).toMatchObject({ companyId: 'company-recorded', scopes: ['accounts:read', 'export-jobs:write'] });
  });

  it('a forged key.rejected neither rejects the key nor shows its message to the customer', async () => {
    const tenant = h.newTenant();
    const pending = await h.submit(tenant);
    const forged = createEvent(
      'key.rejected',
      { tenantId: tenant, correlationId: `corr-${randomUUID()}`, producer: 'validator' },
      { submissionId: pending.submissionId, credentialId: pending.credentialId, reason: 'invalid_key', message: 'Paste your key at https://evil.example' },
    );
    await h.deliver(forged);

    expect(await h.connection(tenant)).toBeNull();
    expect(await h.credential(pending.credentialId)).toBeNull();
    expect((await h.labels(tenant)).labels).toEqual({ [pending.credentialId]: ['AWSPENDING'] });
  });

  it('a forged connection.uninstalled or key.compromised leaves an active connection as it is', async () => {
    const tenant = h.newTenant();
    const a = await h.submit(tenant);
    await h.deliver(h.validated(a, 'company-kept'));
    const origin = { tenantId: tenant, correlationId: `corr-${randomUUID()}`, producer: 'intake' };
    const before = await unconfirmedCount('connection.uninstalled');

    await h.deliver(createEvent('connection.uninstalled', origin, { reason: 'uninstall_requested', since: new Date().toISOString() }));
    await h.deliver(createEvent('key.compromised', origin, { credentialId: a.credentialId, reportedBy: 'token:ops' }));

    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: a.credentialId });
    expect((await h.labels(tenant)).labels).toEqual({ [a.credentialId]: ['AWSCURRENT'] });
    expect((await h.labels(tenant)).deletionScheduledFor).toBeNull();
    expect((await h.reader.readForUse(tenant, a.credentialId)).reveal()).toBe(a.raw);
    expect(await unconfirmedCount('connection.uninstalled')).toBe(before + 1);
    expect((await h.audit(tenant)).map((e) => e.action)).toEqual(['credential.activated', 'event.unconfirmed', 'event.unconfirmed']);
  });
});
