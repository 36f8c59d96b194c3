import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { SecretsModule } from '@keyward/secrets';
import { ServiceTokens } from '@keyward/service-auth';
import { AuthFailureReporter } from './auth-failures/auth-failure-reporter';
import { InstallSessionTokensRepository } from './callers/install-session-tokens.repository';
import { ConnectionStateRepository } from './connections/connection-state.repository';
import { PleoForwarder } from './forwarding/pleo-forwarder';
import { GatewayMetrics } from './gateway-metrics';
import { GatewayService } from './gateway.service';
import { GatewayProblemFilter } from './http/problem.filter';
import { CredentialBudget } from './rate-limits/credential-budget';

/**
 * The credential gateway: the integration's Pleo calls, with the tenant's key attached. It
 * consumes no events; its outbox relay (MessagingModule) publishes the auth.failed it stages.
 */
@Module({
  imports: [SecretsModule.forRoot({ coalesceRevocationChecks: true })],
  providers: [
    { provide: APP_FILTER, useClass: GatewayProblemFilter },
    ServiceTokens,
    GatewayMetrics,
    ConnectionStateRepository,
    InstallSessionTokensRepository,
    CredentialBudget,
    PleoForwarder,
    AuthFailureReporter,
    GatewayService,
  ],
})
export class GatewayModule {}
