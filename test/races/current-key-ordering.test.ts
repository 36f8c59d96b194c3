import { randomUUID } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { captureLogs, eventually, recordAsOwner, startTestService, testConfig } from '@keyward/testing';
import { Caller } from '../../apps/intake/auth/caller';
import { CompromiseService } from '../../apps/intake/compromise/compromise.service';
import { ConnectionRepository } from '../../apps/intake/connections/connection.repository';
import { ConnectionsService } from '../../apps/intake/connections/connections.service';
import { intakeService } from '../../apps/intake/intake.definition';
import { CredentialLifecycleService } from '../../apps/rotation/credential-lifecycle.service';
import { RotationHarness } from '../../apps/rotation/test/rotation-harness';

const OPS: Caller = { kind: 'service', name: 'ops', actor: 'token:ops', rateKey: 'token:ops' };

/**
 * Intake's uninstall and compromise requests racing rotation's activation of a replacement key,
 * interleaved deterministically: the activation is started at the worst moment of the request
 * (after it read the current key, before it read the rest) and the request carries on as soon as
 * the activation has either committed or is waiting for a lock the request holds.
 */
describe('one ordering for everything that changes which key is current', () => {
  const h = new RotationHarness('local');
  let intake: INestApplication;
  const company = `company-${randomUUID()}`;

  beforeAll(async () => {
    await h.start();
    const config = testConfig('intake', { databaseUrl: h.db.url, prefix: h.prefix });
    intake = await startTestService(intakeService(config), config, captureLogs('intake').logger);
  }, 60_000);
  afterAll(async () => {
    await intake?.close();
    await h.stop();
  });

  /** Resolves once `activation` has settled or waits for an advisory lock (one the request holds). */
  const settledOrWaitingForLock = (activation: Promise<unknown>) => {
    let settled = false;
    activation.then(
      () => (settled = true),
      () => (settled = true),
    );
    return eventually(
      async () =>
        settled ||
        (await h.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`))[0].n > 0,
      20_000,
      'the activation to commit or to wait for a lock',
    );
  };

  /** The tenant's active key A and a validated replacement B whose `key.validated` is held back. */
  async function activeWithValidatedReplacement() {
    const tenant = h.newTenant();
    const a = await h.submit(tenant);
    await h.deliver(h.validated(a, company));
    const b = await h.submit(tenant);
    const validatedB = h.validated(b, company);
    // The validator commits its verdict with the event; rotation activates only what it recorded.
    await recordAsOwner(h.db, validatedB);
    return { tenant, a, b, validatedB };
  }

  async function rotationHandled(tenantId: string, type: string): Promise<void> {
    await eventually(
      async () => (await h.db.query(`SELECT 1 FROM outbox o JOIN inbox i ON i.event_id = o.id AND i.consumer = 'rotation' WHERE o.tenant_id = $1 AND o.event_type = $2`, [tenantId, type])).length > 0,
      20_000,
      `rotation to handle ${type}`,
    );
  }

  it('an uninstall racing the activation of a replacement: both keys revoked, the connection ends uninstalled', async () => {
    const { tenant, a, b, validatedB } = await activeWithValidatedReplacement();
    const repository = intake.get(ConnectionRepository);
    const lifecycle = h.app.get(CredentialLifecycleService);
    const undecided = repository.undecidedCredentialIds.bind(repository);
    let activation: Promise<void> = Promise.resolve();
    jest.spyOn(repository, 'undecidedCredentialIds').mockImplementationOnce(async (tx, tenantId) => {
      activation = lifecycle.activate(validatedB);
      await settledOrWaitingForLock(activation);
      return undecided(tx, tenantId);
    });

    const answer = await intake.get(ConnectionsService).uninstall(tenant, OPS, `corr-${randomUUID()}`);
    await activation;
    await rotationHandled(tenant, 'connection.uninstalled');

    expect([...answer.revokedCredentialIds].sort()).toEqual([a.credentialId, b.credentialId].sort());
    expect(await h.connection(tenant)).toMatchObject({ status: 'uninstalled', activeCredentialId: null });
    expect(await h.db.query(`SELECT reason FROM revocations WHERE credential_id = $1`, [b.credentialId])).toEqual([{ reason: 'uninstalled' }]);
    await expect(h.reader.readForUse(tenant, b.credentialId)).rejects.toMatchObject({ code: 'revoked' });
    expect((await h.labels(tenant)).deletionScheduledFor).not.toBeNull();
    expect(await h.credential(b.credentialId)).toBeNull(); // never activated: it was revoked first
  });

  it('a compromise racing the activation of a replacement: the answer names the key that was current when it committed', async () => {
    const { tenant, a, b, validatedB } = await activeWithValidatedReplacement();
    const repository = intake.get(ConnectionRepository);
    const lifecycle = h.app.get(CredentialLifecycleService);
    // After the request read the current key, before it looked up that key's revocation.
    const revocationOf = repository.revocationOf.bind(repository);
    let activation: Promise<void> = Promise.resolve();
    jest.spyOn(repository, 'revocationOf').mockImplementationOnce(async (tx, credentialId) => {
      activation = lifecycle.activate(validatedB);
      await settledOrWaitingForLock(activation);
      return revocationOf(tx, credentialId);
    });

    const answer = await intake.get(CompromiseService).report(tenant, OPS, `corr-${randomUUID()}`);
    await activation;
    await rotationHandled(tenant, 'key.compromised');

    // The compromised key is A, and it was current when the report committed: the tenant's log
    // shows the report before B's activation, which followed it as a replacement.
    expect(answer).toMatchObject({ status: 'disabled', credentialId: a.credentialId });
    const actions = (await h.audit(tenant)).map((e) => `${e.action}:${e.credentialId}`);
    expect(actions.indexOf(`key.compromise_reported:${a.credentialId}`)).toBeGreaterThanOrEqual(0);
    expect(actions.indexOf(`key.compromise_reported:${a.credentialId}`)).toBeLessThan(actions.indexOf(`credential.activated:${b.credentialId}`));
    await eventually(async () => (await h.credential(a.credentialId))?.invalidatedReason === 'compromised', 20_000, 'A marked compromised');
    expect(await h.connection(tenant)).toMatchObject({ status: 'active', activeCredentialId: b.credentialId });
    await expect(h.reader.readForUse(tenant, a.credentialId)).rejects.toMatchObject({ code: 'revoked' });
    expect((await h.labels(tenant)).disabled).toEqual([a.credentialId]);
  });
});
