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

  it('registers neither short words nor values longer than any key', () => {
    const registry = new SecretRegistry();
    expect(registry.register('acme')).toBe(false);
    expect(registry.register('k'.repeat(8_193))).toBe(false);
    expect(registry.size).toBe(0);
  });
});
