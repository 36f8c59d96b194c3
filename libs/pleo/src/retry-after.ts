/** The longest a Retry-After is believed; anything larger is treated as this (a broken header). */
const MAX_RETRY_AFTER_MS = 60 * 60_000;
/** Used when a 429 comes without a readable Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** Retry-After as delta-seconds or an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return DEFAULT_RETRY_AFTER_MS;
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1_000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return DEFAULT_RETRY_AFTER_MS;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/**
 * Remembers "not before" times after a 429, per credential (by a fingerprint, never the key) and
 * per Pleo environment, so no call goes out for that credential until Retry-After has passed.
 */
export class RetryAfterGate {
  private readonly notBefore = new Map<string, number>();

  constructor(private readonly maxEntries = 10_000) {}

  /** Milliseconds still to wait, 0 when a call may go out. */
  waitFor(gateKey: string, now = Date.now()): number {
    const until = this.notBefore.get(gateKey);
    if (until === undefined) return 0;
    if (until <= now) {
      this.notBefore.delete(gateKey);
      return 0;
    }
    return until - now;
  }

  block(gateKey: string, ms: number, now = Date.now()): void {
    if (ms <= 0) return;
    this.notBefore.set(gateKey, Math.max(this.notBefore.get(gateKey) ?? 0, now + ms));
    if (this.notBefore.size > this.maxEntries) this.prune(now);
  }

  /**
   * Forgets the blocks that have passed, then, while more than nine tenths of the bound are left,
   * the oldest insertions (a forgotten block costs at most one more 429). Leaving a tenth free
   * means the next full pass comes only after that many new blocks, not at every one.
   */
  private prune(now: number): void {
    for (const [k, until] of this.notBefore) if (until <= now) this.notBefore.delete(k);
    const keep = Math.floor(this.maxEntries * 0.9);
    for (const k of this.notBefore.keys()) {
      if (this.notBefore.size <= keep) break;
      this.notBefore.delete(k);
    }
  }
}
