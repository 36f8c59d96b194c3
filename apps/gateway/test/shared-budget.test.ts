import { TEST_MASTER_KEY, testAmqpUrl } from '@keyward/testing';
import { freePort } from '@keyward/testing';
import { assertBuilt, ServiceProcess } from '../../../test/e2e/stack';
import { GatewayHarness, pleoPath, seedTenant, SERVICE_TOKEN, startGatewayHarness } from './gateway-harness';

/**
 * Three gateway processes, as three replicas in production, share one credential's budget
 * through Postgres. Twice the budget in calls, spread over all three, lets no more than the
 * budget reach Pleo — here a sandbox that enforces the same limit and would answer 429.
 */
const BUDGET = 30;

describe('the per-credential budget across three gateway processes', () => {
  let h: GatewayHarness;
  const replicas: ServiceProcess[] = [];

  beforeAll(async () => {
    assertBuilt();
    h = await startGatewayHarness({}, BUDGET);
    const env = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: h.db.url,
      AMQP_URL: testAmqpUrl(),
      KEYWARD_AMQP_PREFIX: h.prefix,
      PLEO_API_BASE_URL: h.sandbox.url,
      KEYWARD_MASTER_KEY: TEST_MASTER_KEY,
      KEYWARD_SERVICE_TOKENS: `dev=${SERVICE_TOKEN}`,
      KEYWARD_GATEWAY_RATE_PER_MINUTE: String(BUDGET),
    };
    for (let i = 0; i < 3; i++) replicas.push(new ServiceProcess('gateway', await freePort(), env));
    // A loaded machine can take a while to start three Node processes at once.
    await Promise.all(replicas.map((r) => r.start(80_000)));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await h?.close();
  }, 60_000);

  it(`2 × ${BUDGET} calls → at most ${BUDGET} reach the sandbox, the rest are refused with 429 rate_limited and Retry-After`, async () => {
    const t = await seedTenant(h);
    h.sandbox.state.clearRequests();
    const statuses: number[] = [];
    const refusals: { code: string; retryAfter: string | null }[] = [];
    // Waves of six concurrent calls, two to each replica.
    for (let wave = 0; wave < (2 * BUDGET) / 6; wave++) {
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => fetch(`${replicas[i % 3].url}${pleoPath(t.tenantId, '/v1/employees')}`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } })),
      );
      for (const res of answers) {
        statuses.push(res.status);
        const body = (await res.json()) as { error?: { code: string } };
        if (res.status === 429) refusals.push({ code: body.error?.code ?? '', retryAfter: res.headers.get('retry-after') });
      }
    }
    const reached = h.sandbox.state.recentRequests(2_000).filter((r) => r.credentialLast4 === t.key.apiKey.slice(-4));
    const forwarded = statuses.filter((s) => s === 200).length;
    console.log(`budget ${BUDGET}/min, ${statuses.length} calls over 3 processes: ${reached.length} reached the sandbox, ${refusals.length} refused by the gateway`);
    expect(statuses).toHaveLength(2 * BUDGET);
    expect(reached.length).toBeLessThanOrEqual(BUDGET);
    expect(reached.every((r) => r.status === 200)).toBe(true);
    expect(forwarded).toBe(reached.length);
    expect(forwarded + refusals.length).toBe(2 * BUDGET);
    expect(refusals.every((r) => r.code === 'rate_limited' && Number(r.retryAfter) >= 1)).toBe(true);
    // Tokens leased but not yet used by one replica are briefly unavailable to the others.
    expect(reached.length).toBeGreaterThanOrEqual(BUDGET * 0.6);
  });
});
