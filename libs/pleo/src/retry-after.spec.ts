import { parseRetryAfter, RetryAfterGate } from './retry-after';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-08T10:00:00Z');

  it('reads delta-seconds and HTTP dates, in milliseconds from now', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter(['7'], now)).toBe(7_000);
    expect(parseRetryAfter('Tue, 08 Dec 2026 10:00:05 GMT', now)).toBe(5_000);
  });

  it('waits a second when the header is missing or unreadable, never less than nothing, never more than an hour', () => {
    expect(parseRetryAfter(undefined, now)).toBe(1_000);
    expect(parseRetryAfter('soon', now)).toBe(1_000);
    expect(parseRetryAfter('Tue, 08 Dec 2026 09:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('86400', now)).toBe(60 * 60_000);
  });
});

describe('RetryAfterGate', () => {
  it('holds back one credential until its Retry-After has passed, and no other', () => {
    const gate = new RetryAfterGate();
    gate.block('env:a', 2_000, 1_000);
    expect(gate.waitFor('env:a', 1_500)).toBe(1_500);
    expect(gate.waitFor('env:b', 1_500)).toBe(0);
    expect(gate.waitFor('env:a', 3_000)).toBe(0);
  });

  it('keeps the later of two blocks of the same credential', () => {
    const gate = new RetryAfterGate();
    gate.block('env:a', 10_000, 0);
    gate.block('env:a', 1_000, 0);
    expect(gate.waitFor('env:a', 5_000)).toBe(5_000);
  });

  it('stays within its bound: blocks that passed go first, then the oldest, down to nine tenths so the next pass waits for a tenth more', () => {
    const gate = new RetryAfterGate(100);
    const live = (n: number) => Array.from({ length: n }, (_, i) => gate.waitFor(`live:${i}`, 300) > 0);
    for (let i = 0; i < 50; i++) gate.block(`passed:${i}`, 10, 0);
    for (let i = 0; i < 51; i++) gate.block(`live:${i}`, 60_000, 100);
    // 101 entries: the 50 that passed are forgotten, every live block kept.
    expect(gate.waitFor('passed:0', 100)).toBe(0);
    expect(live(51).every(Boolean)).toBe(true);

    for (let i = 51; i < 101; i++) gate.block(`live:${i}`, 60_000, 200);
    // 101 live blocks: the oldest insertions are forgotten, down to 90 (live:11 … live:100).
    expect(live(101).indexOf(true)).toBe(11);
    expect(live(101).filter(Boolean)).toHaveLength(90);

    // Ten more fit without forgetting any; the eleventh starts the next pass.
    for (let i = 101; i < 111; i++) gate.block(`live:${i}`, 60_000, 300);
    expect(live(111).filter(Boolean)).toHaveLength(100);
    gate.block('live:111', 60_000, 300);
    expect(live(112).filter(Boolean)).toHaveLength(90);
    expect(live(112).indexOf(true)).toBe(22);
  });
});
