import { PeriodicTask, RoundResult } from './periodic-task';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('PeriodicTask', () => {
  it('runs a round at once, then one per interval, and none after stop', async () => {
    let rounds = 0;
    const task = new PeriodicTask({ round: async () => void rounds++, intervalMs: 60_000 });
    task.start();
    await until(() => rounds === 1);
    await sleep(50);
    expect(rounds).toBe(1); // the next one waits for the interval
    await task.stop();
    expect(task.isRunning).toBe(false);
  });

  it('starts the next round at once while a round says there is more', async () => {
    const results: RoundResult[] = ['more', 'more', 'done'];
    let rounds = 0;
    const task = new PeriodicTask({ round: async () => results[rounds++] ?? 'done', intervalMs: 60_000 });
    task.start();
    await until(() => rounds === 3);
    await sleep(50);
    expect(rounds).toBe(3);
    await task.stop();
  });

  it('keeps going after a failure, backing off and reporting each one', async () => {
    const failures: number[] = [];
    let rounds = 0;
    const task = new PeriodicTask({
      round: async () => {
        rounds++;
        if (rounds <= 3) throw new Error(`round ${rounds} failed`);
      },
      intervalMs: 60_000,
      backoff: { initialMs: 5, maxMs: 15 },
      onFailure: (_error, backoffMs) => failures.push(backoffMs),
    });
    task.start();
    await until(() => rounds === 4);
    expect(failures).toEqual([5, 10, 15]);
    await task.stop();
  });

  it('keeps a wake that arrives during a round, so the next round is not a whole interval late', async () => {
    let rounds = 0;
    const task: PeriodicTask = new PeriodicTask({
      round: async () => {
        rounds++;
        if (rounds === 1) task.wake();
      },
      intervalMs: 60_000,
    });
    task.start();
    await until(() => rounds === 2);
    await task.stop();
  });

  it('skips rounds while not ready, and waits for the round in hand on stop', async () => {
    let ready = false;
    let finished = 0;
    const task = new PeriodicTask({
      round: async () => {
        await sleep(50);
        finished++;
      },
      intervalMs: 60_000,
      ready: () => ready,
      notReadyMs: 5,
    });
    task.start();
    await sleep(30);
    expect(finished).toBe(0);
    ready = true;
    await sleep(20); // the round has started and is sleeping
    await task.stop();
    expect(finished).toBe(1);
  });

  it('waits one interval first when asked to', async () => {
    let rounds = 0;
    const task = new PeriodicTask({ round: async () => void rounds++, intervalMs: 40, startImmediately: false });
    task.start();
    await sleep(15);
    expect(rounds).toBe(0);
    await until(() => rounds >= 1);
    await task.stop();
  });

  it('sleeps until the time a round names, never longer than the interval', async () => {
    const at: number[] = [];
    const plan: RoundResult[] = [{ nextInMs: 60 }, { nextInMs: 10_000 }, 'done'];
    const task = new PeriodicTask({
      round: async () => {
        at.push(Date.now());
        return plan[at.length - 1];
      },
      intervalMs: 150,
    });
    task.start();
    await until(() => at.length === 3, 2_000);
    await task.stop();
    const [afterNamed, afterCapped] = [at[1] - at[0], at[2] - at[1]];
    expect(afterNamed).toBeGreaterThanOrEqual(55); // the named 60 ms (timers may fire a little early)
    expect(afterNamed).toBeLessThan(150); // not the interval
    expect(afterCapped).toBeGreaterThanOrEqual(140); // 10 s named, the interval's 150 ms kept
    expect(afterCapped).toBeLessThan(1_000);
  });
});
