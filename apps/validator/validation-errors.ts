import { describeFailure, PleoUnexpectedResponse, PleoUnreachable } from '@keyward/pleo';

/**
 * Thrown to the transport when Pleo gave no answer about a key: the event comes back after the
 * next delay. Carries codes and the Pleo failure, never anything of the key.
 */
export class ValidationDeferredError extends Error {
  readonly code = 'pleo_unreachable';

  constructor(
    readonly failure: PleoUnreachable | PleoUnexpectedResponse,
    readonly attempts: number,
  ) {
    super(`Validation deferred: ${describeFailure(failure)}; attempt ${attempts}`);
    this.name = 'ValidationDeferredError';
  }
}
