import { preferredWaitSeconds, UntilChanged, waitUntilFinal } from './prefer-wait';

/** Look again every `intervalMs`. */
const every =
  (intervalMs: number): UntilChanged =>
  (maxMs) =>
    new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, maxMs)));

describe('Prefer: wait', () => {
  it.each([
    [undefined, 0],
    ['wait=5', 5],
    ['respond-async, wait=12', 12],
    ['WAIT = "3"', 3],
    ['wait=99', 30],
    ['wait=-1', 0],
    ['wait=soon', 0],
    [['handling=strict', 'wait=7'], 7],
  ])('reads %j as %d seconds', (header, seconds) => {
    expect(preferredWaitSeconds(header)).toBe(seconds);
  });

  it('stops looking at the deadline with a value loaded after the last wait', async () => {
    let calls = 0;
    const result = await waitUntilFinal(
      async () => ++calls,
      () => false,
      { seconds: 0.2, untilChanged: every(50) },
    );
    expect(result.final).toBe(false);
    expect(result.value).toBe(calls);
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(10);
  });

  it('returns as soon as the value is final', async () => {
    let calls = 0;
    const result = await waitUntilFinal(
      async () => ++calls,
      (n) => n === 2,
      { seconds: 5, untilChanged: every(10) },
    );
    expect(result).toEqual({ value: 2, final: true });
  });

  it('loads again each time it is told the value may have changed, and never waits longer than the time left', async () => {
    const asked: number[] = [];
    let calls = 0;
    const result = await waitUntilFinal(
      async () => ++calls,
      (n) => n === 3,
      {
        seconds: 30,
        untilChanged: async (maxMs) => {
          asked.push(maxMs);
        },
      },
    );
    expect(result).toEqual({ value: 3, final: true });
    expect(asked).toHaveLength(2);
    for (const maxMs of asked) expect(maxMs).toBeLessThanOrEqual(30_000);
  });

  it.each([
    ['a pending one: loads only after each wake', 0, 2, 2],
    ['a final one: answers it without loading', 7, 7, 0],
  ])('takes a value the caller already knows instead of its first load — %s', async (_, known, value, loads) => {
    let calls = 0;
    const result = await waitUntilFinal(
      async () => ++calls,
      (n) => n === 2 || n === 7,
      { seconds: 5, untilChanged: every(10), known: { value: known } },
    );
    expect(result).toEqual({ value, final: true });
    expect(calls).toBe(loads);
  });

  it('stops once the caller has gone away', async () => {
    const gone = new AbortController();
    let calls = 0;
    const result = await waitUntilFinal(
      async () => ++calls,
      () => false,
      {
        seconds: 30,
        signal: gone.signal,
        untilChanged: async () => gone.abort(),
      },
    );
    expect(result).toEqual({ value: 2, final: false });
  });
});
