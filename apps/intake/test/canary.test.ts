import { canaryKey, eventually, findCanaries, QueueWatch, parkedQueues } from '@keyward/testing';
import { activateAsRotation, dumpDatabase, IntakeHarness, mintSession, newTenant, SERVICE, startIntake } from './intake-harness';

/**
 * A canary key goes through every path intake has — submission by an install session, a wait,
 * activation, a resubmission, a compromise, refused variants — and must then be nowhere but the
 * sealed secret store: not in a log line (from start-up on), an answer, a message or its headers
 * (retry and parked copies included), or any other database row — in any form it could take.
 */
describe('intake: the key never leaves the sealed store', () => {
  let h: IntakeHarness;
  let queues: QueueWatch;
  beforeAll(async () => {
    h = await startIntake();
    queues = new QueueWatch(() => parkedQueues(h.prefix)).start();
  });
  afterAll(async () => {
    await queues?.stop();
    await h?.close();
  });

  it('leaves no trace of a canary key outside secret_versions', async () => {
    const tenant = newTenant('canary');
    const key = canaryKey('leak');
    const answers: string[] = [];
    const keep = <T extends { text: string; headers: Record<string, unknown> }>(res: T): T => {
      answers.push(res.text, JSON.stringify(res.headers));
      return res;
    };
    const session = `Bearer ${await mintSession(h, tenant)}`;
    const path = `/v1/tenants/${tenant}/pleo`;

    const submitted = keep(
      await h
        .http()
        .put(`${path}/key`)
        .set('Authorization', session)
        .set('Prefer', 'wait=1')
        .send({ apiKey: ` ${key} ` })
        .expect(202),
    );
    keep(await h.http().get(`${path}/submissions/${submitted.body.submissionId}`).set('Authorization', session).expect(200));
    await activateAsRotation(h, submitted.body.submissionId);
    keep(await h.http().put(`${path}/key`).set('Authorization', session).send({ apiKey: key }).expect(200));
    keep(await h.http().get(`${path}/connection`).set('Authorization', session).expect(200));
    keep(await h.http().put(`${path}/key?apiKey=${key}`).set('Authorization', SERVICE).send({ apiKey: key }).expect(400));
    keep(await h.http().put(`${path}/key`).set('Authorization', SERVICE).set('Content-Type', 'application/json').send(`{"apiKey": "${key}"`).expect(400));
    keep(
      await h
        .http()
        .put(`${path}/key`)
        .set('Authorization', SERVICE)
        .send({ apiKey: `Bearer ${key}` })
        .expect(400),
    );
    keep(await h.http().put(`${path}/key`).set('Authorization', SERVICE).send({ apiKey: key, extra: key }).expect(400));
    keep(await h.http().put(`/v1/tenants/${newTenant()}/pleo/key`).set('Authorization', session).send({ apiKey: key }).expect(403));
    keep(await h.http().post(`${path}/compromise`).set('Authorization', SERVICE).expect(200));
    keep(await h.http().put(`${path}/key`).set('Authorization', SERVICE).send({ apiKey: key }).expect(422));
    keep(await h.http().get(`/v1/tenants/${tenant}/audit`).set('Authorization', SERVICE).expect(200));
    await eventually(() => h.tap.ofType('key.compromised', tenant).length === 1, 10_000, 'key.compromised');

    // The key did reach the sealed store (so the search below is meaningful).
    expect(await h.db.query('SELECT 1 FROM secret_versions WHERE tenant_id = $1', [tenant])).toHaveLength(1);
    expect(h.logs.lines().length).toBeGreaterThan(10);
    expect(h.tap.raw.length).toBeGreaterThan(0);
    await queues.stop();
    const dump = await dumpDatabase(h);
    expect(dump).toContain(tenant);
    const places = {
      'logs since start-up': h.logs.text(),
      'HTTP answers and their headers': answers.join('\n'),
      'messages on the exchange with their headers': h.tap.text(),
      'retry and parked copies with their headers': queues.text(),
      'database dump outside the sealed store': dump,
    };
    expect(findCanaries(places, [key, ` ${key} `])).toEqual([]);
  });
});
