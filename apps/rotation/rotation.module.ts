import { Module } from '@nestjs/common';
import { SecretsModule } from '@keyward/secrets';
import { CredentialLifecycleService } from './credential-lifecycle.service';
import { LifecycleEventsHandler } from './lifecycle-events.handler';
import { LifecycleRepository } from './lifecycle.repository';
import { RotationMetrics } from './rotation-metrics';
import { SecretLabels } from './secret-labels';
import { SecretPurgeScheduler } from './secret-purge.scheduler';

/** The rotation worker: owns `connections`, `credentials` and the secret labels. */
@Module({
  imports: [SecretsModule.forRoot()],
  controllers: [LifecycleEventsHandler],
  providers: [CredentialLifecycleService, LifecycleRepository, SecretLabels, RotationMetrics, SecretPurgeScheduler],
})
export class RotationModule {}
