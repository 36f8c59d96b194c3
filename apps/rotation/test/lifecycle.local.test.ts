import { AuditLog } from '@keyward/persistence';
import { lifecycleScenarios } from './lifecycle-scenarios';
import { RotationHarness } from './rotation-harness';
import { SecretPurgeScheduler } from '../secret-purge.scheduler';

describe('rotation lifecycle with the local secret backend', () => {
  const harness = new RotationHarness('local');
  beforeAll(() => harness.start(), 60_000);
  afterAll(() => harness.stop());

  lifecycleScenarios(() => harness);

  it('the audit chain fails verification after an entry was edited in place', async () => {
    const tenant = harness.newTenant();
    const a = await harness.submit(tenant);
    await harness.deliver(harness.validated(a, 'company-audit'));
    await harness.compromise(tenant, a.credentialId);
    expect(await harness.verifyAudit(tenant)).toEqual({ ok: true, entries: 3 });

    await harness.tamperWithAudit(tenant, 2);
    expect(await harness.verifyAudit(tenant)).toEqual({ ok: false, entries: 3, brokenAtSeq: 2 });
  });

  it("an uninstalled tenant's secret is deleted for good once the recovery window has passed, and audited", async () => {
    const tenant = harness.newTenant();
    const a = await harness.submit(tenant);
    await harness.deliver(harness.validated(a, 'company-purge'));
    await harness.uninstall(tenant);
    const purge = harness.app.get(SecretPurgeScheduler);
    expect(await purge.purge()).not.toContain(tenant); // still inside the window: restorable

    await harness.endRecoveryWindow(tenant);
    expect(await purge.purge()).toEqual([tenant]);
    expect(await harness.store.describe(tenant)).toBeNull();
    expect((await harness.audit(tenant)).map((e) => e.action).at(-1)).toBe('secret.purged');
    expect(await harness.verifyAudit(tenant)).toMatchObject({ ok: true });
  });

  it('a purge whose audit entry cannot be written deletes nothing; the next round purges and audits', async () => {
    const tenant = harness.newTenant();
    const a = await harness.submit(tenant);
    await harness.deliver(harness.validated(a, 'company-purge-atomic'));
    await harness.uninstall(tenant);
    await harness.endRecoveryWindow(tenant);
    const purge = harness.app.get(SecretPurgeScheduler);

    const append = jest.spyOn(AuditLog, 'append').mockRejectedValueOnce(new Error('the process died here'));
    await expect(purge.purge()).rejects.toThrow();
    append.mockRestore();
    expect(await harness.store.describe(tenant)).not.toBeNull();
    expect((await harness.audit(tenant)).map((e) => e.action)).not.toContain('secret.purged');

    expect(await purge.purge()).toEqual([tenant]);
    expect(await harness.store.describe(tenant)).toBeNull();
    expect((await harness.audit(tenant)).map((e) => e.action).at(-1)).toBe('secret.purged');
  });
});
