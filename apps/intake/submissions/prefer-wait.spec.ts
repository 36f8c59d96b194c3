import { preferredWaitSeconds, waitUntilFinal } from './prefer-wait';

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

  it('stops polling at the deadline with the last value', async () => {
    let calls = 0;
    const result = await waitUntilFinal(async () => ++calls, () => false, { seconds: 0.2, intervalMs: 50 });
    expect(result.final).toBe(false);
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(10);
  });

  it('returns as soon as the value is final', async () => {
    let calls = 0;
    const result = await waitUntilFinal(async () => ++calls, (n) => n === 2, { seconds: 5, intervalMs: 10 });
    expect(result).toEqual({ value: 2, final: true });
  });
});
