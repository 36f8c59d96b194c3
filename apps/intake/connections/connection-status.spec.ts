import { ConnectionEntity, ConnectionHealthEntity, CredentialEntity } from '@keyward/persistence';
import { SubmissionRecord } from '../submissions/submission-status';
import { ConnectionSnapshot, connectionView } from './connection-status';

const ACTIVE_ID = '33333333-3333-4333-8333-333333333333';
const submission: SubmissionRecord = {
  id: '11111111-1111-4111-8111-111111111111',
  tenantId: 't-1',
  credentialId: '22222222-2222-4222-8222-222222222222',
  last4: 'new1',
  fingerprint: 'f'.repeat(64),
  createdAt: new Date('2025-01-02T00:00:00Z'),
  supersededAt: null,
  credentialStatus: null,
  rejectionReason: null,
  rejectionDetail: null,
  lastErrorCode: null,
  parkedAt: null,
};
const connection = {
  tenantId: 't-1',
  status: 'active',
  companyId: 'c-1',
  subjectType: 'company',
  subjectId: 'c-1',
  activeCredentialId: ACTIVE_ID,
  errorCode: null,
  errorDetail: null,
  activatedAt: new Date('2025-01-01T00:00:00Z'),
  lastValidatedAt: new Date('2025-01-01T00:00:00Z'),
  statusSince: new Date('2025-01-01T00:00:00Z'),
} as ConnectionEntity;
const credential = { id: ACTIVE_ID, status: 'active', last4: 'old1', scopes: ['accounts:read'] } as CredentialEntity;
const health = (state: ConnectionHealthEntity['state'], credentialId = ACTIVE_ID, missingScopes: string[] | null = null) =>
  ({ tenantId: 't-1', credentialId, state, missingScopes, authFailures: 2, lastAuthFailureAt: new Date(), since: new Date(), lastValidatedAt: null }) as ConnectionHealthEntity;

const empty: ConnectionSnapshot = { tenantId: 't-1', connection: null, activeCredential: null, activeRevocation: null, health: null, newest: null, newestRevoked: false };
const active: ConnectionSnapshot = { ...empty, connection, activeCredential: credential };

describe('connection status (derived)', () => {
  it.each<[string, ConnectionSnapshot, string, string | null]>([
    ['nothing', empty, 'not_connected', null],
    ['a pending first key', { ...empty, newest: submission }, 'pending_validation', null],
    ['a pending key Pleo did not answer for', { ...empty, newest: { ...submission, lastErrorCode: 'pleo_unreachable' } }, 'pending_validation', 'pleo_unreachable'],
    ['a rejected first key', { ...empty, newest: { ...submission, credentialStatus: 'rejected', rejectionReason: 'company_mismatch' } }, 'not_connected', 'company_mismatch'],
    ['an active key', active, 'active', null],
    ['an active key with a pending replacement', { ...active, newest: submission }, 'active', null],
    ['degraded health', { ...active, health: health('degraded') }, 'degraded', 'degraded'],
    ['reconnect required', { ...active, health: health('reconnect_required') }, 'reconnect_required', 'reconnect_required'],
    ['reconnect required for scopes', { ...active, health: health('reconnect_required', ACTIVE_ID, ['users:read']) }, 'reconnect_required', 'insufficient_scopes'],
    ['health of a previous key', { ...active, health: health('reconnect_required', submission.credentialId) }, 'active', null],
    ['a disabled connection', { ...active, connection: { ...connection, status: 'disabled' } }, 'disabled', 'key_compromised'],
    ['a compromise rotation has not acted on yet', { ...active, activeRevocation: 'compromised' }, 'disabled', 'key_compromised'],
    ['an uninstalled connection', { ...active, connection: { ...connection, status: 'uninstalled' } }, 'uninstalled', 'uninstalled'],
    ['a revoked pending key after uninstall', { ...empty, newest: submission, newestRevoked: true }, 'not_connected', null],
  ])('%s → %s', (_what, snapshot, status, errorCode) => {
    const view = connectionView(snapshot);
    expect(view.status).toBe(status);
    expect(view.error?.code ?? null).toBe(errorCode);
    if (view.error) expect(view.error.action.length).toBeGreaterThan(10);
  });

  it('shows a pending replacement next to the active key', () => {
    const view = connectionView({ ...active, newest: submission });
    expect(view.key).toEqual({ last4: 'old1', masked: '••••••••old1' });
    expect(view.pendingSubmission).toMatchObject({ submissionId: submission.id, key: { last4: 'new1' }, lastError: null });
  });
});
