import { lifecycleScenarios } from './lifecycle-scenarios';
import { RotationHarness } from './rotation-harness';

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
});
