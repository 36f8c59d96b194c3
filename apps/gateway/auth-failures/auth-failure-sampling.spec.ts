import { FailureWindow, sampleAuthFailure } from './auth-failure-sampling';

describe('sampleAuthFailure', () => {
  const rules = { perWindow: 3, windowMs: 300_000 };

  it('publishes the first perWindow failures of a window and counts the rest only', () => {
    let window: FailureWindow | undefined;
    const published: boolean[] = [];
    for (let i = 0; i < 1_000; i++) {
      const result = sampleAuthFailure(window, 1_000 + i, rules);
      window = result.window;
      published.push(result.publish);
    }
    expect(published.filter(Boolean)).toHaveLength(3);
    expect(published.slice(0, 3)).toEqual([true, true, true]);
  });

  it('a new window publishes again', () => {
    const full = { startedAt: 0, published: 3 };
    expect(sampleAuthFailure(full, 299_999, rules).publish).toBe(false);
    expect(sampleAuthFailure(full, 300_000, rules)).toEqual({ publish: true, window: { startedAt: 300_000, published: 1 } });
  });
});
