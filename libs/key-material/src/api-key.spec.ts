import { inspect } from 'node:util';
import { ApiKey } from './api-key';
import { parseSubmittedKey } from './submitted-key';

const CANARY = 'canary-key-material-7f3a9c1e5b2d4680';

describe('ApiKey', () => {
  it('never shows its value when printed, serialised or inspected', () => {
    const key = ApiKey.fromTrusted(CANARY);
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- the point: a key in a template prints redacted
    const shown = [String(key), `${key}`, JSON.stringify({ key }), inspect(key), inspect({ nested: { key } })];
    for (const text of shown) expect(text).not.toContain(CANARY);
    expect(key.reveal()).toBe(CANARY);
    expect(key.last4).toBe('4680');
  });

  it('fingerprints with a pepper so equal keys match and different peppers do not', () => {
    const a = ApiKey.fromTrusted(CANARY);
    const b = ApiKey.fromTrusted(CANARY);
    const pepper = Buffer.alloc(32, 1);
    expect(a.fingerprint(pepper)).toBe(b.fingerprint(pepper));
    expect(a.fingerprint(pepper)).not.toBe(a.fingerprint(Buffer.alloc(32, 2)));
    expect(a.fingerprint(pepper)).not.toContain(CANARY);
  });
});

describe('parseSubmittedKey', () => {
  it('forgives surrounding whitespace from a paste', () => {
    const parsed = parseSubmittedKey(`  \n${CANARY}\t `);
    expect(parsed.ok && parsed.key.reveal()).toBe(CANARY);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    [`Bearer ${CANARY}`, 'has_auth_scheme'],
    [`basic ${CANARY}`, 'has_auth_scheme'],
    ['canary-key material-7f3a9c1e5b2d4680', 'inner_whitespace'],
    ['canary-key\u0007material-7f3a9c1e5b2d4680', 'control_characters'],
    ['short', 'too_short'],
    ['x'.repeat(600), 'too_long'],
    ['canary-key-matérial-7f3a9c1e5b2d4680', 'not_ascii'],
  ])('refuses %j as %s', (raw, problem) => {
    expect(parseSubmittedKey(raw)).toEqual({ ok: false, problem });
  });
});
