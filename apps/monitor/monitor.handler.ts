import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { EventEnvelope } from '@keyward/contracts';
import { batchPattern } from '@keyward/messaging';
import { AuthFailureBatchService } from './auth-failure-batch.service';
import { ConnectionHealthService } from './connection-health.service';
import { HealthLifecycleService } from './health-lifecycle.service';

/**
 * The monitor's events, straight to its services: auth failures and revalidations to
 * ConnectionHealthService (a batch's auth failures together to AuthFailureBatchService), the
 * credential lifecycle to HealthLifecycleService.
 */
@Controller()
export class MonitorEventsHandler {
  constructor(
    @Inject(ConnectionHealthService) private readonly health: ConnectionHealthService,
    @Inject(HealthLifecycleService) private readonly lifecycle: HealthLifecycleService,
    @Inject(AuthFailureBatchService) private readonly failures: AuthFailureBatchService,
  ) {}

  @EventPattern('auth.failed')
  async onAuthFailed(@Payload() event: EventEnvelope<'auth.failed'>): Promise<void> {
    await this.health.onAuthFailed(event);
  }

  /** The auth failures that arrived together in a batch, decided together (ADR 0035). */
  @EventPattern(batchPattern('auth.failed'))
  async onAuthFailedBatch(@Payload() events: EventEnvelope<'auth.failed'>[]): Promise<void> {
    await this.failures.onAuthFailures(events);
  }

  @EventPattern('key.revalidated')
  async onRevalidated(@Payload() event: EventEnvelope<'key.revalidated'>): Promise<void> {
    await this.health.onRevalidated(event);
  }

  @EventPattern('connection.check_requested')
  async onCheckRequested(@Payload() event: EventEnvelope<'connection.check_requested'>): Promise<void> {
    await this.lifecycle.onCheckRequested(event);
  }

  @EventPattern('key.activated')
  async onActivated(@Payload() event: EventEnvelope<'key.activated'>): Promise<void> {
    await this.lifecycle.onActivated(event);
  }

  @EventPattern('key.invalidated')
  async onInvalidated(@Payload() event: EventEnvelope<'key.invalidated'>): Promise<void> {
    await this.lifecycle.onInvalidated(event);
  }

  @EventPattern('connection.disabled')
  async onDisabled(@Payload() event: EventEnvelope<'connection.disabled'>): Promise<void> {
    await this.lifecycle.onDisabled(event);
  }

  @EventPattern('connection.uninstalled')
  async onUninstalled(@Payload() event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    await this.lifecycle.onUninstalled(event);
  }
}
