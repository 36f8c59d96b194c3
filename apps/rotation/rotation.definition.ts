import { ServiceDefinition } from '@keyward/bootstrap';
import { RetryPolicy } from '@keyward/messaging';
import { ROTATION } from './rotation-identity';
import { RotationModule } from './rotation.module';
import { unappliedVerdictsSweep } from './unapplied-verdicts.sweep';

/** What `main.ts` starts and what the tests build: the `rotation` queue and its reconciler sweep. */
export function rotationDefinition(retry?: RetryPolicy): ServiceDefinition {
  return { module: RotationModule, consumes: ROTATION.consumer, retry, reconcile: [unappliedVerdictsSweep] };
}
