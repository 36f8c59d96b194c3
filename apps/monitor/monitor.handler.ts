import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { EventEnvelope } from '@keyward/contracts';
import { ConnectionHealthService } from './connection-health.service';

/** The monitor's events, straight to the decisions in ConnectionHealthService. */
@Controller()
export class MonitorEventsHandler {
  constructor(@Inject(ConnectionHealthService) private readonly health: ConnectionHealthService) {}

  @EventPattern('auth.failed')
  async onAuthFailed(@Payload() event: EventEnvelope<'auth.failed'>): Promise<void> {
    await this.health.onAuthFailed(event);
  }

  @EventPattern('connection.check_requested')
  async onCheckRequested(@Payload() event: EventEnvelope<'connection.check_requested'>): Promise<void> {
    await this.health.onCheckRequested(event);
  }

  @EventPattern('key.revalidated')
  async onRevalidated(@Payload() event: EventEnvelope<'key.revalidated'>): Promise<void> {
    await this.health.onRevalidated(event);
  }

  @EventPattern('key.activated')
  async onActivated(@Payload() event: EventEnvelope<'key.activated'>): Promise<void> {
    await this.health.onActivated(event);
  }

  @EventPattern('key.invalidated')
  async onInvalidated(@Payload() event: EventEnvelope<'key.invalidated'>): Promise<void> {
    await this.health.onInvalidated(event);
  }

  @EventPattern('connection.disabled')
  async onDisabled(@Payload() event: EventEnvelope<'connection.disabled'>): Promise<void> {
    await this.health.onDisabled(event);
  }

  @EventPattern('connection.uninstalled')
  async onUninstalled(@Payload() event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    await this.health.onUninstalled(event);
  }
}
