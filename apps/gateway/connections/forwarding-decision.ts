/** What the gateway knows about a tenant before it reads the key (connections + connection_health). */
export interface ConnectionState {
  /** No connection row and no submission: keyward never heard of this tenant. */
  known: boolean;
  lifecycle: 'not_connected' | 'active' | 'disabled' | 'uninstalled' | null;
  activeCredentialId: string | null;
  /** Health of the active credential only (a row about an older credential does not apply). */
  health: 'healthy' | 'degraded' | 'reconnect_required' | null;
  /** A submitted key still awaits validation. */
  pendingSubmission: boolean;
}

type ConnectionStatus = 'not_connected' | 'pending_validation' | 'active' | 'degraded' | 'reconnect_required' | 'disabled' | 'uninstalled';

export type ForwardingDecision =
  | { forward: true; credentialId: string; status: 'active' | 'degraded' }
  | { forward: false; code: 'tenant_not_found' }
  | { forward: false; code: 'connection_not_active'; status: Exclude<ConnectionStatus, 'active' | 'degraded'> };

/**
 * Which calls go to Pleo: only for an `active` or `degraded` connection (a degraded key is being
 * re-checked and may still work; its failures are what the monitor needs to see). Every other
 * state is refused without a call, naming the status the connection endpoint would show.
 */
export function forwardingDecision(state: ConnectionState): ForwardingDecision {
  if (!state.known) return { forward: false, code: 'tenant_not_found' };
  const refuse = (status: Exclude<ConnectionStatus, 'active' | 'degraded'>): ForwardingDecision => ({ forward: false, code: 'connection_not_active', status });
  switch (state.lifecycle) {
    case 'disabled':
      return refuse('disabled');
    case 'uninstalled':
      return refuse('uninstalled');
    case 'active':
      if (!state.activeCredentialId) return refuse('not_connected');
      if (state.health === 'reconnect_required') return refuse('reconnect_required');
      return { forward: true, credentialId: state.activeCredentialId, status: state.health === 'degraded' ? 'degraded' : 'active' };
    default:
      return refuse(state.pendingSubmission ? 'pending_validation' : 'not_connected');
  }
}

/** A revocation found when reading the key wins over a connection row that has not caught up yet. */
export function statusOfRevocation(reason: string | undefined): 'disabled' | 'uninstalled' {
  return reason === 'uninstalled' ? 'uninstalled' : 'disabled';
}
