/**
 * Retry policy for Secrets Manager calls. The SDK's standard strategy classifies
 * `LimitExceededException` (a hard quota, e.g. too many versions or labels) as throttling and
 * retries it, which only burns time and API budget: this strategy never retries it. Throttling,
 * transient network errors and 5xx are retried with full-jitter exponential backoff.
 * Structurally a smithy RetryStrategyV2 (the SDK detects it by its three methods).
 */
const NEVER_RETRIED_ERRORS = new Set(['LimitExceededException']);

interface RetryToken {
  getRetryCount(): number;
  getRetryDelay(): number;
}

interface RetryErrorInfo {
  error?: { name?: string; $metadata?: { httpStatusCode?: number } };
  errorType: 'TRANSIENT' | 'THROTTLING' | 'SERVER_ERROR' | 'CLIENT_ERROR';
  retryAfterHint?: Date;
}

export interface SecretsRetryOptions {
  maxAttempts: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

export class SecretsRetryStrategy {
  readonly mode = 'standard';
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(private readonly options: SecretsRetryOptions) {
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
    this.random = options.random ?? Math.random;
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return token(0, 0);
  }

  async refreshRetryTokenForRetry(previous: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const attempt = previous.getRetryCount() + 1;
    if (!this.shouldRetry(info) || attempt >= this.options.maxAttempts) {
      // The SDK rethrows the original error when this rejects.
      throw new Error('not retried');
    }
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    let delay = Math.floor(this.random() * ceiling);
    if (info.retryAfterHint) delay = Math.min(this.maxDelayMs, Math.max(delay, info.retryAfterHint.getTime() - Date.now()));
    return token(attempt, delay);
  }

  recordSuccess(_token: RetryToken): void {}

  shouldRetry(info: RetryErrorInfo): boolean {
    if (info.error?.name && NEVER_RETRIED_ERRORS.has(info.error.name)) return false;
    return info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT' || info.errorType === 'SERVER_ERROR';
  }
}

function token(count: number, delay: number): RetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay };
}
