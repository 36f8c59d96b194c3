import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createDataSource } from '@keyward/persistence';
import { createTestDatabase, TestDatabase } from '@keyward/testing';
import { perSecond, RateBudgetExhaustedError, SharedRateBudget } from './shared-rate-budget';

let db: TestDatabase;
let replicaA: DataSource;
let replicaB: DataSource;
beforeAll(async () => {
  db = await createTestDatabase();
  // Two pools, as two processes would have: nothing is shared but Postgres.
  replicaA = await createDataSource({ url: db.url, poolSize: 4, applicationName: 'budget-replica-a' }).initialize();
  replicaB = await createDataSource({ url: db.url, poolSize: 4, applicationName: 'budget-replica-b' }).initialize();
});
afterAll(async () => {
  await replicaA?.destroy();
  await replicaB?.destroy();
  await db?.drop();
});

const budgetName = () => `test:${randomUUID()}`;

/**
 * The most of `times` (ms, sorted) that fall within any window (t − windowMs, t]. Postgres keeps
 * microseconds; epoch milliseconds in a double carry them to within a fraction of one.
 */
function busiestWindow(times: number[], windowMs: number): number {
  let most = 0;
  for (let end = 0, start = 0; end < times.length; end++) {
    while (times[start] <= times[end] - windowMs + 0.001) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

describe('perSecond()', () => {
  it.each([
    [40, 4, 100],
    [50, 5, 100],
    [45, 3, 66.667],
    [7, 1, 142.857],
    [1, 1, 1000],
  ])('%i a second: %i tokens per %d ms, so every second holds at most the rate', (rate, limit, windowMs) => {
    const shape = perSecond(rate);
    expect(shape.limit).toBe(limit);
    expect(shape.windowMs).toBeCloseTo(windowMs, 2);
    expect(1000 / shape.windowMs).toBeCloseTo(rate / limit, 6);
  });

  it.each([0, -1, 2.5, Number.NaN])('refuses %p', (rate) => expect(() => perSecond(rate)).toThrow(RangeError));
});

describe('SharedRateBudget', () => {
  it('two holders on separate DataSources never get more than the rate together, in any second or any window', async () => {
    const name = budgetName();
    const rate = 20;
    const shape = perSecond(rate); // 2 tokens per 100 ms
    const holders = [new SharedRateBudget(replicaA, name, shape), new SharedRateBudget(replicaB, name, shape)];
    const slots: number[] = [];
    const sentAt: number[] = [];
    const perHolder = [0, 0];
    // 8 callers per holder, 4 calls each: 64 calls, 3.2 s of budget at the least.
    await Promise.all(
      holders.flatMap((holder, h) =>
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 4; i++) {
            const { startsAtMs } = await holder.take(60_000);
            slots.push(startsAtMs);
            sentAt.push(Date.now());
            perHolder[h]++;
          }
        }),
      ),
    );
    expect(perHolder).toEqual([32, 32]);
    slots.sort((a, b) => a - b);
    // The schedule Postgres handed out, on its own clock: exact, whatever the machine's load.
    expect(busiestWindow(slots, shape.windowMs)).toBeLessThanOrEqual(shape.limit);
    expect(busiestWindow(slots, 1000)).toBeLessThanOrEqual(rate);
    expect(slots[slots.length - 1] - slots[0]).toBeGreaterThanOrEqual(((64 - shape.limit) / shape.limit) * shape.windowMs - 1);
    // What the callers did with it, on this process's clock (timers fire late on a busy machine): generous.
    sentAt.sort((a, b) => a - b);
    expect(busiestWindow(sentAt, 1000)).toBeLessThanOrEqual(2 * rate);
  });

  it('as the gateway spends it: a block now or a refusal with when there is room; given-back tokens can be used again', async () => {
    const budget = new SharedRateBudget(replicaA, budgetName(), { limit: 5, windowMs: 60_000 });
    const other = new SharedRateBudget(replicaB, budget.name, budget.shape);
    const first = await budget.book(3, 0);
    expect(first).toMatchObject({ booked: true, granted: 3, startsInMs: 0 });
    expect(await other.book(4, 0)).toMatchObject({ booked: true, granted: 2, startsInMs: 0 }); // what is left
    const refused = await other.book(1, 0);
    if (refused.booked) throw new Error('booked beyond the budget');
    expect(refused.retryAfterMs).toBeGreaterThan(50_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    // The first holder used only one of its three.
    if (!first.booked) throw new Error('not booked');
    await budget.giveBack(first.leaseId, 1);
    expect(await other.book(4, 0)).toMatchObject({ booked: true, granted: 2, startsInMs: 0 });
  });

  it('a wait longer than allowed is refused at once, and books nothing', async () => {
    const budget = new SharedRateBudget(replicaA, budgetName(), { limit: 1, windowMs: 30_000 });
    await budget.take(0);
    const error = await budget.take(1_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateBudgetExhaustedError);
    expect((error as RateBudgetExhaustedError).retryAfterMs).toBeGreaterThan(1_000);
    const [{ leases }] = await db.query<{ leases: number }>('SELECT count(*)::int AS leases FROM rate_budget_leases WHERE budget = $1', [budget.name]);
    expect(leases).toBe(1);
  });

  it('books a later slot for whoever asks while the window is full, in the order they asked', async () => {
    const name = budgetName();
    const holders = [new SharedRateBudget(replicaA, name, { limit: 2, windowMs: 400 }), new SharedRateBudget(replicaB, name, { limit: 2, windowMs: 400 })];
    const bookings = [];
    for (let i = 0; i < 6; i++) bookings.push(await holders[i % 2].book(1, 10_000));
    const starts = bookings.map((b) => (b.booked ? b.startsAtMs : Number.NaN));
    expect(bookings.map((b) => b.booked && b.granted)).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    // Two now, two one window later, two after that.
    expect(starts[2] - starts[0]).toBeGreaterThanOrEqual(400 - 1);
    expect(starts[4] - starts[2]).toBeGreaterThanOrEqual(400 - 1);
  });
});
