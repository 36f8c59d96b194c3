import { randomBytes } from 'node:crypto';
import { REDACTED, SecretRegistry } from './redaction';

const value = () => randomBytes(24).toString('base64url');

describe('SecretRegistry', () => {
  it('keeps a live key however many values are registered after it', () => {
    const registry = new SecretRegistry(60_000, 10);
    const key = value();
    expect(registry.register(key)).toBe(true);
    for (let i = 0; i < 100; i++) registry.register(value());
    expect(registry.scrub(`pleo said no to ${key}`)).toBe(`pleo said no to ${REDACTED}`);
    expect(registry.size).toBe(10);
    expect(registry.refusedWhenFull).toBe(91);
  });

  it('makes room only from expired values', () => {
    const registry = new SecretRegistry(-1, 2); // every entry expires at once
    registry.register(value());
    registry.register(value());
    const fresh = value();
    expect(registry.register(fresh)).toBe(true);
    expect(registry.refusedWhenFull).toBe(0);
  });

  it('keeps a value that is registered again and again, past its first lifetime', () => {
    const now = jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
    try {
      const registry = new SecretRegistry(60_000);
      const token = value();
      registry.register(token);
      now.mockReturnValue(1_000_000 + 20_000);
      registry.register(token); // still fresh: nothing to renew
      now.mockReturnValue(1_000_000 + 45_000);
      registry.register(token); // past half its life: renewed
      now.mockReturnValue(1_000_000 + 100_000);
      expect(registry.scrub(`bearer ${token}`)).toBe(`bearer ${REDACTED}`);
      now.mockReturnValue(1_000_000 + 106_000);
      expect(registry.scrub(`bearer ${token}`)).toBe(`bearer ${token}`);
    } finally {
      now.mockRestore();
    }
  });

  it.each([
    ['a few values, looked for one by one', 5],
    ['thousands of values, looked up by prefix', 5_000],
  ])('cuts every registered value out of a text, wherever it stands, and nothing else (%s)', (_, count) => {
    const registry = new SecretRegistry(60_000, 10_000);
    const values = Array.from({ length: count }, value);
    for (const v of values) registry.register(v);
    const [first, middle, last] = [values[0], values[Math.floor(count / 2)], values[count - 1]];
    // Shares the first eight characters of a registered value, but is not one.
    const lookalike = `${middle.slice(0, 8)}${'x'.repeat(24)}`;
    const text = `${first} then ${middle}${middle}, ${lookalike}, ${'z'.repeat(300)}${last}`;
    expect(registry.scrub(text)).toBe(`${REDACTED} then ${REDACTED}${REDACTED}, ${lookalike}, ${'z'.repeat(300)}${REDACTED}`);
    expect(registry.scrub(`nothing here but ${lookalike}`)).toBe(`nothing here but ${lookalike}`);
  });

  it.each([5, 500])('cuts out the whole of a value that holds a shorter registered one (%i values)', (count) => {
    const registry = new SecretRegistry();
    const short = value();
    registry.register(short); // registered first
    for (let i = 2; i < count; i++) registry.register(value());
    const long = `${short}_${value()}`;
    registry.register(long);
    expect(registry.scrub(`got ${long} and ${short}`)).toBe(`got ${REDACTED} and ${REDACTED}`);
  });

  it('lets an expired value through, however many are registered', () => {
    const now = jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
    try {
      const registry = new SecretRegistry(60_000);
      const values = Array.from({ length: 500 }, value);
      for (const v of values) registry.register(v);
      now.mockReturnValue(1_000_000 + 61_000);
      const fresh = value();
      registry.register(fresh);
      expect(registry.scrub(`late ${values[7]}, fresh ${fresh}`)).toBe(`late ${values[7]}, fresh ${REDACTED}`);
    } finally {
      now.mockRestore();
    }
  });

  it('registers neither short words nor values longer than any key', () => {
    const registry = new SecretRegistry();
    expect(registry.register('acme')).toBe(false);
    expect(registry.register('k'.repeat(8_193))).toBe(false);
    expect(registry.size).toBe(0);
  });
});
