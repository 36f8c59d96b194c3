import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { SecretsModule } from '@keyward/secrets';
import { AuditController } from './audit/audit.controller';
import { AuditService } from './audit/audit.service';
import { AccessRefusalsRepository } from './auth/access-refusals.repository';
import { CallerGuard } from './auth/caller.guard';
import { ServiceTokens } from '@keyward/service-auth';
import { CompromiseController } from './compromise/compromise.controller';
import { CompromiseService } from './compromise/compromise.service';
import { ConnectionChecksController } from './connection-checks/connection-checks.controller';
import { ConnectionCheckRepository } from './connection-checks/connection-check.repository';
import { ConnectionChecksService } from './connection-checks/connection-checks.service';
import { ConnectionListController } from './connections/connection-list.controller';
import { ConnectionListRepository } from './connections/connection-list.repository';
import { AlertDeliveriesController } from './alert-deliveries/alert-deliveries.controller';
import { AlertDeliveriesRepository } from './alert-deliveries/alert-deliveries.repository';
import { AlertDeliveriesService } from './alert-deliveries/alert-deliveries.service';
import { ConnectPageController } from './connect/connect-page.controller';
import { ConnectionRepository } from './connections/connection.repository';
import { ConnectionsController } from './connections/connections.controller';
import { ConnectionsService } from './connections/connections.service';
import { ProblemFilter } from './http/problem.filter';
import { InstallSessionsController } from './install-sessions/install-sessions.controller';
import { IntakeHousekeeping } from './housekeeping/intake-housekeeping';
import { InstallSessionRepository } from './install-sessions/install-session.repository';
import { InstallSessionsService } from './install-sessions/install-sessions.service';
import { SubmissionRateLimiter } from './rate-limits/submission-rate-limiter';
import { SubmissionDecisionsListener } from './submissions/submission-decisions.listener';
import { SubmissionMetrics } from './submissions/submission-metrics';
import { SubmissionRepository } from './submissions/submission.repository';
import { SubmissionsController } from './submissions/submissions.controller';
import { DecisionWait } from './submissions/decision-wait';
import { SubmissionWaiters } from './submissions/submission-waiters';
import { SubmissionsService } from './submissions/submissions.service';

/**
 * The HTTP front door: key submissions, status reads, compromise reports, uninstall, audit.
 * It consumes no events; its outbox relay (MessagingModule) publishes what it stages.
 */
@Module({
  imports: [SecretsModule.forRoot()],
  controllers: [
    ConnectPageController,
    InstallSessionsController,
    SubmissionsController,
    ConnectionsController,
    ConnectionChecksController,
    ConnectionListController,
    CompromiseController,
    AuditController,
    AlertDeliveriesController,
  ],
  providers: [
    { provide: APP_FILTER, useClass: ProblemFilter },
    ServiceTokens,
    InstallSessionsService,
    InstallSessionRepository,
    IntakeHousekeeping,
    AccessRefusalsRepository,
    CallerGuard,
    SubmissionRateLimiter,
    SubmissionMetrics,
    SubmissionRepository,
    SubmissionsService,
    SubmissionWaiters,
    DecisionWait,
    SubmissionDecisionsListener,
    ConnectionRepository,
    ConnectionsService,
    ConnectionChecksService,
    ConnectionCheckRepository,
    ConnectionListRepository,
    CompromiseService,
    AuditService,
    AlertDeliveriesService,
    AlertDeliveriesRepository,
  ],
})
export class IntakeModule {}
