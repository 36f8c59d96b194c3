/**
 * Timings of the monitor's loops that are not deployment settings (those live in
 * `config.monitor`). Tests shorten them; production uses the defaults.
 */
export interface MonitorTimings {
  /** How often the scheduler claims due probes and reviews provider incidents. */
  schedulerTickMs: number;
  /** How often active connections without a health row (or with a stale one) are repaired. */
  reconcileEveryMs: number;
  /** How often that repair looks at every active connection; the rounds between look at those changed lately. */
  fullRepairEveryMs: number;
  /** How often the webhook worker looks for undelivered alerts. */
  deliveryPollMs: number;
  webhookTimeoutMs: number;
  /** Attempts per alert, the first included; then the alert is given up (and logged as such). */
  webhookMaxAttempts: number;
  webhookBaseBackoffMs: number;
  webhookMaxBackoffMs: number;
  /** Alerts older than this are not delivered by webhook any more (the event went out anyway). */
  webhookHorizonHours: number;
  /** A revalidation nobody answered is asked again after this long. */
  revalidationTimeoutMs: number;
  /** Retry delays after a revalidation found Pleo unreachable: grows with the incident's age. */
  unreachableRetryMinMs: number;
  unreachableRetryMaxMs: number;
}

export const DEFAULT_MONITOR_TIMINGS: MonitorTimings = {
  schedulerTickMs: 1_000,
  reconcileEveryMs: 60_000,
  fullRepairEveryMs: 60 * 60_000,
  deliveryPollMs: 2_000,
  webhookTimeoutMs: 5_000,
  webhookMaxAttempts: 8,
  webhookBaseBackoffMs: 2_000,
  webhookMaxBackoffMs: 300_000,
  webhookHorizonHours: 6,
  revalidationTimeoutMs: 10 * 60_000,
  unreachableRetryMinMs: 30_000,
  unreachableRetryMaxMs: 30 * 60_000,
};

export const MONITOR_TIMINGS = Symbol('MONITOR_TIMINGS');
