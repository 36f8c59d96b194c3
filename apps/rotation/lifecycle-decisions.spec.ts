import { randomUUID } from 'node:crypto';
import type { ConnectionEntity, CredentialEntity, SubmissionEntity } from '@keyward/persistence';
import { CredentialSituation, decideActivation, decideCompromise, decideRejection, decideUninstall } from './lifecycle-decisions';

const credentialId = randomUUID();
const validated = { submissionId: randomUUID(), credentialId, companyId: 'company-1', subjectType: 'company' as const, scopes: ['accounts:read'] };
const rejected = { submissionId: validated.submissionId, credentialId, reason: 'invalid_key' as const, message: 'no' };

function situation(overrides: Partial<CredentialSituation> = {}, connection: Partial<ConnectionEntity> | null = null): CredentialSituation {
  return {
    connection: connection ? ({ tenantId: 't', status: 'active', companyId: 'company-1', activeCredentialId: randomUUID(), ...connection } as ConnectionEntity) : null,
    submission: { credentialId, seq: '2', supersededAt: null } as SubmissionEntity,
    newestPending: true,
    credential: null,
    revoked: false,
    uninstalled: false,
    ...overrides,
  };
}

describe('lifecycle decisions', () => {
  it('activates the newest pending credential, replacing the active one', () => {
    const s = situation({}, {});
    expect(decideActivation(s, validated)).toEqual({
      kind: 'activate',
      previousCredentialId: s.connection!.activeCredentialId,
      expectedCurrentVersionId: s.connection!.activeCredentialId,
      reinstall: false,
      bindsCompany: false,
    });
  });

  it('binds the company on the first activation and again after an uninstall', () => {
    expect(decideActivation(situation(), validated)).toMatchObject({ kind: 'activate', bindsCompany: true, previousCredentialId: null, reinstall: false });
    const reinstall = situation({}, { status: 'uninstalled', activeCredentialId: null, companyId: 'company-0' });
    expect(decideActivation(reinstall, validated)).toMatchObject({ kind: 'activate', bindsCompany: true, reinstall: true });
  });

  it('never activates a revoked credential, even the newest one', () => {
    expect(decideActivation(situation({ revoked: true }), validated)).toEqual({ kind: 'unchanged', why: 'revoked' });
  });

  it('changes nothing for a superseded or already decided credential', () => {
    expect(decideActivation(situation({ newestPending: false }), validated)).toEqual({ kind: 'unchanged', why: 'superseded' });
    expect(decideActivation(situation({ credential: { status: 'active' } as CredentialEntity }), validated)).toEqual({ kind: 'unchanged', why: 'already_applied' });
    expect(decideActivation(situation({ credential: { status: 'rejected' } as CredentialEntity }), validated)).toEqual({ kind: 'unchanged', why: 'already_decided' });
    expect(decideRejection(situation({ newestPending: false }), rejected)).toEqual({ kind: 'unchanged', why: 'superseded' });
  });

  it('refuses a key of another company than the bound one, and an unknown credential', () => {
    expect(decideActivation(situation({}, { companyId: 'company-2' }), validated)).toMatchObject({ kind: 'refused', code: 'company_mismatch' });
    expect(decideActivation(situation({ submission: null }), validated)).toMatchObject({ kind: 'refused', code: 'unknown_credential' });
  });

  it('shows a rejection on the connection only when no key is active', () => {
    expect(decideRejection(situation(), rejected)).toEqual({ kind: 'reject', connectionShowsRejection: true, schedulesDeletion: false });
    expect(decideRejection(situation({}, {}), rejected)).toEqual({ kind: 'reject', connectionShowsRejection: false, schedulesDeletion: false });
    expect(decideRejection(situation({}, { status: 'disabled', activeCredentialId: null }), rejected)).toEqual({
      kind: 'reject',
      connectionShowsRejection: false,
      schedulesDeletion: false,
    });
  });

  it.each([
    ['the uninstalled connection', { status: 'uninstalled' as const, activeCredentialId: null }],
    ['a connection not connected since a rejected reinstall', { status: 'not_connected' as const, activeCredentialId: null }],
  ])("schedules the deletion of an uninstalled tenant's secret again when its reinstall is rejected (%s)", (_name, connection) => {
    expect(decideRejection(situation({ uninstalled: true }, connection), rejected)).toEqual({ kind: 'reject', connectionShowsRejection: true, schedulesDeletion: true });
  });

  it('disables the connection only when the compromised key is the active one', () => {
    const active = { tenantId: 't', status: 'active', activeCredentialId: credentialId } as ConnectionEntity;
    expect(decideCompromise(active, { status: 'active' } as CredentialEntity, credentialId)).toEqual({ kind: 'contain_compromise', disablesConnection: true, marksCredential: true });
    const replaced = { status: 'invalidated', invalidatedReason: 'replaced' } as CredentialEntity;
    const other = { ...active, activeCredentialId: randomUUID() } as ConnectionEntity;
    expect(decideCompromise(other, replaced, credentialId)).toEqual({ kind: 'contain_compromise', disablesConnection: false, marksCredential: true });
    const done = { status: 'invalidated', invalidatedReason: 'compromised' } as CredentialEntity;
    expect(decideCompromise({ ...active, activeCredentialId: null }, done, credentialId)).toEqual({ kind: 'unchanged', why: 'already_applied' });
  });

  it('ignores an uninstall overtaken by a reinstall (the active key is not revoked)', () => {
    const connection = { tenantId: 't', status: 'active', activeCredentialId: credentialId } as ConnectionEntity;
    expect(decideUninstall(connection, false)).toEqual({ kind: 'unchanged', why: 'reinstalled_since' });
    expect(decideUninstall(connection, true)).toEqual({ kind: 'uninstall', activeCredentialId: credentialId });
    expect(decideUninstall({ ...connection, status: 'uninstalled', activeCredentialId: null }, false)).toEqual({ kind: 'unchanged', why: 'already_applied' });
    expect(decideUninstall(null, false)).toEqual({ kind: 'uninstall', activeCredentialId: null });
  });
});
