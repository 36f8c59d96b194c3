/**
 * Redaction happens at the logger, before a line is written: whatever a caller passes, fields
 * named like credentials are replaced, and any value registered as a secret at run time is cut
 * out of every string (messages, nested fields, error messages and stacks).
 */
export const REDACTED = '[redacted]';

const SENSITIVE_NAME =
  /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|key|token|access[-_]?token|refresh[-_]?token|id[-_]?token|secret|secret[-_]?string|client[-_]?secret|password|passwd|plaintext|master[-_]?key|pepper|data[-_]?key)$|(token|secret|password|apikey|api_key)$/i;

const SAFE_NAME = /^(last4|masked|credentialId|secretVersionId|tokenHash|keyId|masterKeyId)$/;

export function isSensitiveFieldName(name: string): boolean {
  return !SAFE_NAME.test(name) && SENSITIVE_NAME.test(name);
}

/**
 * Values keyward itself handles as secrets (keys from authenticated submissions or read for use,
 * tokens it minted or authenticated), so no log line carries them (ADR 18). Never fed with
 * unauthenticated input: that would let anyone fill it, evict real keys or blank chosen strings.
 * A live entry is never evicted: when full of unexpired values, a new one is refused (counted).
 */
export class SecretRegistry {
  private readonly values = new Map<string, number>();
  /**
   * The values by their first `PREFIX` characters (every value has at least that many): a scrub
   * looks up each place of its text here, so its cost follows the text's length, not the number
   * of values registered (one per tenant whose key a process read in the last half hour).
   */
  private readonly byPrefix = new Map<string, Set<string>>();
  /** Registrations refused because the registry was full of live values. */
  refusedWhenFull = 0;

  constructor(
    private readonly ttlMs = 30 * 60_000,
    private readonly maxEntries = 20_000,
    /** Longer than any key keyward accepts (KEYWARD_KEY_MAX_LENGTH ≤ 8192). */
    private readonly maxValueLength = 8_192,
  ) {}

  /** False when the value was not registered (too short, too long, or the registry is full). */
  register(value: string): boolean {
    // Very short values would blank out ordinary words; key material is long.
    if (typeof value !== 'string' || value.length < PREFIX || value.length > this.maxValueLength) return false;
    const now = Date.now();
    const expires = this.values.get(value);
    // The same token on every call (the gateway, intake's guard): a lookup, renewed at half its life.
    if (expires !== undefined && expires - now > this.ttlMs / 2) return true;
    if (expires === undefined && this.values.size >= this.maxEntries) {
      this.pruneExpired(now);
      if (this.values.size >= this.maxEntries) {
        this.refusedWhenFull++;
        return false;
      }
    }
    this.values.delete(value);
    this.values.set(value, now + this.ttlMs);
    const prefix = value.slice(0, PREFIX);
    const sharing = this.byPrefix.get(prefix);
    if (sharing) sharing.add(value);
    else this.byPrefix.set(prefix, new Set([value]));
    return true;
  }

  private pruneExpired(now: number): void {
    for (const [value, expires] of this.values) if (expires < now) this.forget(value);
  }

  private forget(value: string): void {
    this.values.delete(value);
    const prefix = value.slice(0, PREFIX);
    const sharing = this.byPrefix.get(prefix);
    sharing?.delete(value);
    if (sharing?.size === 0) this.byPrefix.delete(prefix);
  }

  /**
   * The text with every live registered value in it replaced by `[redacted]`, longest first (a
   * value inside a longer one cannot leave the rest of the longer one behind). A few values are
   * looked for one by one; more, through `byPrefix` at each place of the text.
   */
  scrub(text: string): string {
    if (this.values.size === 0 || text.length < PREFIX) return text;
    const found = new Set<string>();
    if (this.values.size <= SEARCHED_ONE_BY_ONE) {
      for (const value of this.values.keys()) if (text.includes(value)) found.add(value);
    } else {
      for (let at = 0; at + PREFIX <= text.length; at++) {
        const sharing = this.byPrefix.get(text.slice(at, at + PREFIX));
        if (sharing) for (const value of sharing) if (text.startsWith(value, at)) found.add(value);
      }
    }
    if (found.size === 0) return text;
    const now = Date.now();
    let out = text;
    for (const value of [...found].sort((a, b) => b.length - a.length)) {
      if (this.values.get(value)! < now) {
        this.forget(value);
        continue;
      }
      if (out.includes(value)) out = out.split(value).join(REDACTED);
    }
    return out;
  }

  get size(): number {
    return this.values.size;
  }
}

/** The shortest value the registry takes, and the length of the prefix it indexes values by. */
const PREFIX = 8;
/** Up to this many values, a scrub looks for each in the text; beyond, it looks up the text's places. */
const SEARCHED_ONE_BY_ONE = 128;

export const secretRegistry = new SecretRegistry();

/**
 * Registers a value keyward handles as a secret (a key from an authenticated submission or read
 * for use, a token it minted or authenticated) so no log line carries it. Never call it with
 * input from an unauthenticated request.
 */
export function registerSecret(value: string): boolean {
  return secretRegistry.register(value);
}

export function redact(value: unknown, registry: SecretRegistry = secretRegistry, depth = 0): unknown {
  if (typeof value === 'string') return registry.scrub(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[too deep]';
  if (value instanceof Error) {
    const out: Record<string, unknown> = {
      type: value.name,
      message: registry.scrub(value.message),
      stack: value.stack ? registry.scrub(value.stack) : undefined,
    };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = redact(value.cause, registry, depth + 1);
    return out;
  }
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' && !Array.isArray(value)) {
    return redact((value as { toJSON(): unknown }).toJSON(), registry, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, registry, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = isSensitiveFieldName(k) && v !== undefined && v !== null ? REDACTED : redact(v, registry, depth + 1);
  }
  return out;
}
