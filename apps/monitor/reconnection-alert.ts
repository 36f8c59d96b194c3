import { EventData, problem } from '@keyward/contracts';
import type { ReconnectReason } from './health-decisions';

/**
 * The customer-facing alert: why the connection needs them and what to do, from the one problem
 * table. Names the credential by last4 only.
 */
export function reconnectionAlert(input: { reason: ReconnectReason; companyId: string | null; last4: string; since: Date; missingScopes?: string[] | null }): EventData<'alert.reconnection_required'> {
  const action = problem(input.reason === 'invalid_key' ? 'reconnect_required' : input.reason).action;
  return {
    reason: input.reason,
    companyId: input.companyId,
    last4: input.last4,
    since: input.since.toISOString(),
    action,
    ...(input.reason === 'insufficient_scopes' && input.missingScopes?.length ? { missingScopes: input.missingScopes } : {}),
  };
}
