/** What one replica remembers about a credential's recent 401/403s. */
export interface FailureWindow {
  startedAt: number;
  published: number;
}

export interface SamplingRules {
  /** Events per credential per window: the monitor's threshold, so it can still degrade the key. */
  perWindow: number;
  windowMs: number;
}

/**
 * Whether this 401/403 becomes an `auth.failed` event. The monitor needs `threshold` failures in
 * its window to act and one alert per incident, so more events carry no news: a burst of 1,000
 * failures publishes at most `perWindow` events per replica per window, the rest are counted only.
 */
export function sampleAuthFailure(window: FailureWindow | undefined, now: number, rules: SamplingRules): { publish: boolean; window: FailureWindow } {
  const current = window && now - window.startedAt < rules.windowMs ? window : { startedAt: now, published: 0 };
  if (current.published >= rules.perWindow) return { publish: false, window: current };
  return { publish: true, window: { startedAt: current.startedAt, published: current.published + 1 } };
}
