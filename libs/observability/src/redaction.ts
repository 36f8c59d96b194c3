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

/** Values seen at run time that must never be written, kept for a while, bounded in number. */
export class SecretRegistry {
  private readonly values = new Map<string, number>();

  constructor(
    private readonly ttlMs = 30 * 60_000,
    private readonly maxEntries = 5_000,
  ) {}

  register(value: string): void {
    // Very short values would blank out ordinary words; key material is long.
    if (typeof value !== 'string' || value.length < 8) return;
    this.values.delete(value);
    this.values.set(value, Date.now() + this.ttlMs);
    while (this.values.size > this.maxEntries) {
      const oldest = this.values.keys().next().value as string;
      this.values.delete(oldest);
    }
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

/** Registers a value seen at run time (a submitted key, a token) so no log line carries it. */
export function registerSecret(value: string): void {
  secretRegistry.register(value);
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
