import { boundCompany, type EventData, fitsBinding } from '@keyward/contracts';
import type { ConnectionEntity, CredentialEntity, SubmissionEntity } from '@keyward/persistence';

/**
 * What rotation knows about one credential when an event about it arrives, read under the
 * tenant's lock. Decisions below are pure functions of it: message order never matters.
 */
export interface CredentialSituation {
  connection: ConnectionEntity | null;
  /** Intake's row for the credential (null: not a submission of this tenant). */
  submission: SubmissionEntity | null;
  /** The credential is the tenant's newest submission (max seq) and not superseded. */
  newestPending: boolean;
  /** Rotation's own row, once it decided on the credential. */
  credential: CredentialEntity | null;
  /** A revocations row exists: the key must never be used, let alone become active. */
  revoked: boolean;
  /** The tenant has keys an uninstall revoked, and no key is in service since. */
  uninstalled: boolean;
}

/** An event that must not change anything, and why (for the debug log and the metric). */
export interface Unchanged {
  kind: 'unchanged';
  why: 'superseded' | 'revoked' | 'already_decided' | 'already_applied' | 'not_active' | 'reinstalled_since' | 'no_connection' | 'unconfirmed';
}

/** An event that can never be applied: the transport parks it for an operator. */
export interface Refused {
  kind: 'refused';
  code: 'unknown_credential' | 'company_mismatch';
  message: string;
}

export interface Activate {
  kind: 'activate';
  /** The credential being replaced (invalidated as `replaced`), if any. */
  previousCredentialId: string | null;
  /** Where AWSCURRENT must be now for the compare-and-swap (the database's active credential). */
  expectedCurrentVersionId: string | null;
  /** The tenant uninstalled earlier: cancel the secret's scheduled deletion first. */
  reinstall: boolean;
  /** First activation (or first since an uninstall): the connection binds to this company. */
  bindsCompany: boolean;
}

export interface Reject {
  kind: 'reject';
  /** No key has ever been active (or the tenant uninstalled): the connection shows the rejection. */
  connectionShowsRejection: boolean;
  /**
   * The tenant uninstalled and this rejected key was the reinstall attempt that brought its
   * secret back: nothing keeps the secret alive now, so its deletion is scheduled again.
   */
  schedulesDeletion: boolean;
}

export interface ContainCompromise {
  kind: 'contain_compromise';
  /** The compromised key is the active one: the connection is disabled and loses it. */
  disablesConnection: boolean;
  /** The credential row (active, or invalidated for another reason) is marked compromised. */
  marksCredential: boolean;
}

export interface Uninstall {
  kind: 'uninstall';
  activeCredentialId: string | null;
}

export function decideActivation(s: CredentialSituation, validated: EventData<'key.validated'>): Unchanged | Refused | Activate {
  if (!s.submission) {
    return { kind: 'refused', code: 'unknown_credential', message: `Credential ${validated.credentialId} is no submission of this tenant` };
  }
  // A revoked credential never becomes active, whatever else is true of it.
  if (s.revoked) return { kind: 'unchanged', why: 'revoked' };
  if (s.credential) return { kind: 'unchanged', why: s.credential.status === 'active' ? 'already_applied' : 'already_decided' };
  if (!s.newestPending) return { kind: 'unchanged', why: 'superseded' };

  const connection = s.connection;
  const uninstalled = connection?.status === 'uninstalled';
  const bound = boundCompany(connection);
  // The validator enforces the binding; this is the last line before a key of another company
  // would serve this tenant's money data.
  if (!fitsBinding(bound, validated.companyId)) {
    return {
      kind: 'refused',
      code: 'company_mismatch',
      message: `Credential ${validated.credentialId} belongs to another company than the connection is bound to`,
    };
  }
  const previous = connection?.activeCredentialId ?? null;
  return {
    kind: 'activate',
    previousCredentialId: previous,
    expectedCurrentVersionId: previous,
    reinstall: uninstalled,
    bindsCompany: bound === null,
  };
}

export function decideRejection(s: CredentialSituation, rejected: EventData<'key.rejected'>): Unchanged | Refused | Reject {
  if (!s.submission) {
    return { kind: 'refused', code: 'unknown_credential', message: `Credential ${rejected.credentialId} is no submission of this tenant` };
  }
  if (s.credential) return { kind: 'unchanged', why: s.credential.status === 'rejected' ? 'already_applied' : 'already_decided' };
  // A superseded submission's result is of no interest to anyone any more.
  if (!s.newestPending) return { kind: 'unchanged', why: 'superseded' };
  if (s.revoked) return { kind: 'unchanged', why: 'revoked' };
  const status = s.connection?.status;
  const connectionShowsRejection = status === undefined || status === 'not_connected' || status === 'uninstalled';
  return { kind: 'reject', connectionShowsRejection, schedulesDeletion: connectionShowsRejection && s.uninstalled };
}

export function decideCompromise(connection: ConnectionEntity | null, credential: CredentialEntity | null, credentialId: string): ContainCompromise | Unchanged {
  const isActive = connection?.activeCredentialId === credentialId;
  // A key replaced between the report and now is already out of use: the new one keeps working.
  const marksCredential = isActive || credential?.status === 'active' || (credential?.status === 'invalidated' && credential.invalidatedReason !== 'compromised');
  if (!isActive && !marksCredential) return { kind: 'unchanged', why: credential ? 'already_applied' : 'not_active' };
  return { kind: 'contain_compromise', disablesConnection: isActive, marksCredential };
}

export function decideUninstall(connection: ConnectionEntity | null, activeRevoked: boolean): Uninstall | Unchanged {
  if (connection?.status === 'uninstalled' && !connection.activeCredentialId) return { kind: 'unchanged', why: 'already_applied' };
  // Intake's uninstall takes the tenant's current-key lock, as every activation does, and
  // revokes the key active at that point and every undecided one. So an active key without a
  // revocation was activated after the uninstall committed: a reinstall overtook the event (ADR 19).
  if (connection?.activeCredentialId && !activeRevoked) return { kind: 'unchanged', why: 'reinstalled_since' };
  return { kind: 'uninstall', activeCredentialId: connection?.activeCredentialId ?? null };
}
