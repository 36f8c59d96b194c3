import { ServiceDefinition } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { configureIntakeHttp } from './http/http-setup';
import { IntakeModule } from './intake.module';
import { unvalidatedSubmissionsSweep } from './submissions/unvalidated-submissions.sweep';

/** What `main.ts` starts and what the tests build: HTTP only, no consumed queue. */
export function intakeService(config: KeywardConfig): ServiceDefinition {
  return { module: IntakeModule, configureApp: (app) => configureIntakeHttp(app, config), reconcile: [unvalidatedSubmissionsSweep] };
}
