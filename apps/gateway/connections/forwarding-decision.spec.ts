import { ConnectionState, forwardingDecision, statusOfRevocation } from './forwarding-decision';

const base: ConnectionState = { known: true, lifecycle: 'active', activeCredentialId: 'c1', health: null, pendingSubmission: false };

describe('forwardingDecision', () => {
  it.each<[Partial<ConnectionState>, ReturnType<typeof forwardingDecision>]>([
    [{}, { forward: true, credentialId: 'c1', status: 'active' }],
    [{ health: 'healthy' }, { forward: true, credentialId: 'c1', status: 'active' }],
    [{ health: 'degraded' }, { forward: true, credentialId: 'c1', status: 'degraded' }],
    [{ health: 'reconnect_required' }, { forward: false, code: 'connection_not_active', status: 'reconnect_required' }],
    [{ lifecycle: 'disabled' }, { forward: false, code: 'connection_not_active', status: 'disabled' }],
    [{ lifecycle: 'uninstalled' }, { forward: false, code: 'connection_not_active', status: 'uninstalled' }],
    [
      { lifecycle: 'not_connected', activeCredentialId: null },
      { forward: false, code: 'connection_not_active', status: 'not_connected' },
    ],
    [
      { lifecycle: null, activeCredentialId: null, pendingSubmission: true },
      { forward: false, code: 'connection_not_active', status: 'pending_validation' },
    ],
    [
      { lifecycle: 'active', activeCredentialId: null },
      { forward: false, code: 'connection_not_active', status: 'not_connected' },
    ],
    [
      { known: false, lifecycle: null, activeCredentialId: null },
      { forward: false, code: 'tenant_not_found' },
    ],
  ])('%j → %j', (change, expected) => {
    expect(forwardingDecision({ ...base, ...change })).toEqual(expected);
  });

  it('a revocation shows as the state it leads to', () => {
    expect(statusOfRevocation('compromised')).toBe('disabled');
    expect(statusOfRevocation('uninstalled')).toBe('uninstalled');
    expect(statusOfRevocation(undefined)).toBe('disabled');
  });
});
