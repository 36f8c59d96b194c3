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
    if (typeof value !== 'string' || value.length < 8 || value.length > this.maxValueLength) return false;
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
    return true;
  }

  private pruneExpired(now: number): void {
    for (const [value, expires] of this.values) if (expires < now) this.values.delete(value);
  }

  scrub(text: string): string {
    if (this.values.size === 0 || text.length < 8) return text;
    const now = Date.now();
    let out = text;
    for (const [value, expires] of this.values) {
      if (expires < now) {
        this.values.delete(value);
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
