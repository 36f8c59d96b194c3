import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[ApiKey redacted]';

/**
 * Key material. The only way to see the value is `reveal()`, which is called only at the places
 * that must send or seal it (the Authorization header of the Pleo client and of the gateway, and the
 * secret store).
 * Everything that prints, serialises or logs an ApiKey gets `[ApiKey redacted]`.
 */
export class ApiKey {
  readonly #value: string;

  private constructor(value: string) {
    this.#value = value;
  }

  /** Wraps a value that has already passed the format check (see `parseSubmittedKey`). */
  static fromTrusted(value: string): ApiKey {
    if (typeof value !== 'string' || value.length === 0) throw new TypeError('ApiKey needs a non-empty string');
    return new ApiKey(value);
  }

  reveal(): string {
    return this.#value;
  }

  get last4(): string {
    return this.#value.slice(-4);
  }

  /** HMAC-SHA256 under a server-side pepper: compares keys without storing them. */
  fingerprint(pepper: Buffer): string {
    return createHmac('sha256', pepper).update(this.#value, 'utf8').digest('hex');
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export function maskLast4(last4: string): string {
  return `••••••••${last4}`;
}
