import { Inject, Injectable } from '@nestjs/common';
import type { Counter, Histogram } from 'prom-client';
import { Metrics } from '@keyward/observability';

/** The gateway's metrics. Labels are method, status class, code: never a tenant, credential or path. */
@Injectable()
export class GatewayMetrics {
  private readonly requests: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly refused: Counter<string>;
  private readonly rateLimited: Counter<string>;
  private readonly authFailures: Counter<string>;
  private readonly authFailuresLost: Counter<string>;
  private readonly upstreamErrors: Counter<string>;

  constructor(@Inject(Metrics) metrics: Metrics) {
    this.requests = metrics.counter('keyward_gateway_requests_total', 'Calls answered by the gateway, by method and status class', ['method', 'status_class']);
    this.duration = metrics.histogram(
      'keyward_gateway_request_duration_seconds',
      'Time from a call arriving to its answer headers, by method and whether Pleo was called',
      ['method', 'forwarded'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.refused = metrics.counter('keyward_gateway_refused_total', 'Calls keyward refused without calling Pleo, by code', ['code']);
    this.rateLimited = metrics.counter('keyward_gateway_rate_limited_total', "Calls refused because the credential's budget was spent");
    this.authFailures = metrics.counter('keyward_gateway_pleo_auth_failures_total', 'Pleo 401/403 answers, and whether an auth.failed was published', ['status', 'published']);
    this.authFailuresLost = metrics.counter('keyward_gateway_auth_failed_unstaged_total', 'auth.failed events that could not be staged after retries');
    this.upstreamErrors = metrics.counter('keyward_gateway_upstream_errors_total', 'Calls where Pleo could not be reached or timed out', ['kind']);
  }

  answered(method: string, status: number, seconds: number, forwarded: boolean): void {
    this.requests.inc({ method, status_class: `${Math.floor(status / 100)}xx` });
    this.duration.observe({ method, forwarded: forwarded ? 'true' : 'false' }, seconds);
  }

  refusal(code: string): void {
    this.refused.inc({ code });
    if (code === 'rate_limited') this.rateLimited.inc();
  }

  authFailure(status: number, published: boolean): void {
    this.authFailures.inc({ status: String(status), published: published ? 'true' : 'false' });
  }

  authFailureLost(): void {
    this.authFailuresLost.inc();
  }

  upstreamError(kind: 'timeout' | 'unreachable' | 'aborted'): void {
    this.upstreamErrors.inc({ kind });
  }
}
