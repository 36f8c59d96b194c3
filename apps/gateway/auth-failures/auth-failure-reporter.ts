import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { createEvent } from '@keyward/contracts';
import { Outbox } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { GATEWAY } from '../gateway-identity';
import { GatewayMetrics } from '../gateway-metrics';
import { FailureWindow, sampleAuthFailure, SamplingRules } from './auth-failure-sampling';

const MAX_TRACKED = 50_000;
const STAGE_ATTEMPTS = 5;

export interface ObservedAuthFailure {
  tenantId: string;
  credentialId: string;
  status: 401 | 403;
  endpoint: string;
  correlationId: string;
  observedAt: Date;
}

/**
 * Turns Pleo's own 401/403 into `auth.failed` through the outbox, sampled per credential
 * (auth-failure-sampling.ts). Staged after the caller has its answer; a Postgres hiccup is
 * retried with backoff, and a failure that still cannot be staged is logged and counted.
 */
@Injectable()
export class AuthFailureReporter {
  private readonly windows = new Map<string, FailureWindow>();
  private readonly rules: SamplingRules;

  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEYWARD_CONFIG) config: KeywardConfig,
    @Inject(KeywardLogger) private readonly logger: KeywardLogger,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
  ) {
    this.rules = { perWindow: config.monitor.failureThreshold, windowMs: config.monitor.failureWindowSeconds * 1000 };
  }

  report(failure: ObservedAuthFailure): void {
    const { publish, window } = sampleAuthFailure(this.windows.get(failure.credentialId), Date.now(), this.rules);
    this.windows.delete(failure.credentialId);
    this.windows.set(failure.credentialId, window);
    if (this.windows.size > MAX_TRACKED) this.windows.delete(this.windows.keys().next().value as string);
    this.metrics.authFailure(failure.status, publish);
    if (publish) void this.stage(failure);
  }

  private async stage(failure: ObservedAuthFailure): Promise<void> {
    const event = createEvent(
      'auth.failed',
      { tenantId: failure.tenantId, correlationId: failure.correlationId, producer: GATEWAY.producer },
      { credentialId: failure.credentialId, status: failure.status, source: GATEWAY.producer, endpoint: failure.endpoint, observedAt: failure.observedAt.toISOString() },
    );
    for (let attempt = 1; ; attempt++) {
      try {
        await this.dataSource.transaction((tx) => Outbox.stage(tx, event));
        this.logger.info('Pleo refused a key; auth.failed staged', {
          tenantId: failure.tenantId,
          credentialId: failure.credentialId,
          status: failure.status,
          endpoint: failure.endpoint,
          correlationId: failure.correlationId,
          eventId: event.id,
        });
        return;
      } catch (error) {
        if (attempt >= STAGE_ATTEMPTS) {
          this.metrics.authFailureLost();
          this.logger.error('Could not stage auth.failed; this failure will not reach the monitor', {
            tenantId: failure.tenantId,
            credentialId: failure.credentialId,
            correlationId: failure.correlationId,
            err: error,
          });
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }
}
