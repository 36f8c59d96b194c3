import { ApiKey } from './api-key';

export interface KeyFormatRules {
  minLength: number;
  maxLength: number;
}

const DEFAULT_KEY_FORMAT: KeyFormatRules = { minLength: 20, maxLength: 512 };

type KeyFormatProblem = 'empty' | 'has_auth_scheme' | 'inner_whitespace' | 'control_characters' | 'too_short' | 'too_long' | 'not_ascii';

export type ParsedKey = { ok: true; key: ApiKey } | { ok: false; problem: KeyFormatProblem };

/**
 * The format check for a pasted key. Surrounding whitespace from a paste is forgiven; anything
 * else odd is refused with a problem code the caller turns into a person-facing message.
 * The problem never contains the value.
 */
export function parseSubmittedKey(raw: string, rules: KeyFormatRules = DEFAULT_KEY_FORMAT): ParsedKey {
  const value = raw.trim();
  if (value.length === 0) return { ok: false, problem: 'empty' };
  if (/^(basic|bearer)\s/i.test(value)) return { ok: false, problem: 'has_auth_scheme' };
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\u0000-\u001f\u007f]/.test(value.replace(/[\t\n\r ]/g, ''))) return { ok: false, problem: 'control_characters' };
  if (/\s/.test(value)) return { ok: false, problem: 'inner_whitespace' };
  if (!/^[\x21-\x7e]+$/.test(value)) return { ok: false, problem: 'not_ascii' };
  if (value.length < rules.minLength) return { ok: false, problem: 'too_short' };
  if (value.length > rules.maxLength) return { ok: false, problem: 'too_long' };
  return { ok: true, key: ApiKey.fromTrusted(value) };
}
