import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';
import { EventEnvelope } from '@keyward/contracts';
import { CredentialLifecycleService } from './credential-lifecycle.service';

/** Transport only: every decision is the lifecycle service's, made from the database state. */
@Controller()
export class LifecycleEventsHandler {
  constructor(@Inject(CredentialLifecycleService) private readonly lifecycle: CredentialLifecycleService) {}

  @EventPattern('key.validated')
  async onValidated(@Payload() event: EventEnvelope<'key.validated'>): Promise<void> {
    await this.lifecycle.activate(event);
  }

  @EventPattern('key.rejected')
  async onRejected(@Payload() event: EventEnvelope<'key.rejected'>): Promise<void> {
    await this.lifecycle.reject(event);
  }

  @EventPattern('key.compromised')
  async onCompromised(@Payload() event: EventEnvelope<'key.compromised'>): Promise<void> {
    await this.lifecycle.handleCompromise(event);
  }

  @EventPattern('connection.uninstalled')
  async onUninstalled(@Payload() event: EventEnvelope<'connection.uninstalled'>): Promise<void> {
    await this.lifecycle.uninstall(event);
  }
}
