import type { z } from 'zod';
import { problem } from '@keyward/contracts';
import { ConnectionEntity, ConnectionHealthEntity, CredentialEntity } from '@keyward/persistence';
import type { CONNECTION } from './connection.schema';
import { asRejectionReason, isProblemCode, keyView, pendingError, stringList, SubmissionRecord, submissionStatus } from '../submissions/submission-status';

export const CONNECTION_STATUSES = ['not_connected', 'pending_validation', 'active', 'degraded', 'reconnect_required', 'disabled', 'uninstalled'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/** Everything the status of one tenant is derived from (nobody stores the derived status). */
export interface ConnectionSnapshot {
  tenantId: string;
  connection: ConnectionEntity | null;
  activeCredential: CredentialEntity | null;
  /** A committed revocation of the active credential, which takes effect before rotation acts on it. */
  activeRevocation: 'compromised' | 'uninstalled' | null;
  health: ConnectionHealthEntity | null;
  newest: SubmissionRecord | null;
  /** Whether the newest submission's credential is revoked (uninstall while it was pending). */
  newestRevoked: boolean;
}

/** What GET …/pleo/connection answers for one tenant. */
export type ConnectionView = z.infer<typeof CONNECTION>;
type ConnectionError = NonNullable<ConnectionView['error']>;

/** Health rows apply only while they describe the active credential. */
function applicableHealth(s: ConnectionSnapshot): ConnectionHealthEntity | null {
  return s.health && s.connection?.activeCredentialId && s.health.credentialId === s.connection.activeCredentialId ? s.health : null;
}

function pendingNewest(s: ConnectionSnapshot): SubmissionRecord | null {
  return s.newest && !s.newestRevoked && submissionStatus(s.newest) === 'pending_validation' ? s.newest : null;
}

/**
 * ARCHITECTURE.md's derivation: disabled/uninstalled from connections (or from a committed
 * revocation of the active credential, which rotation has not acted on yet); an active
 * connection shows the health of its credential; else a pending newest submission; else
 * not connected.
 */
export function connectionStatus(s: ConnectionSnapshot): ConnectionStatus {
  const lifecycle = s.connection?.status;
  if (lifecycle === 'disabled' || s.activeRevocation === 'compromised') return 'disabled';
  if (lifecycle === 'uninstalled' || s.activeRevocation === 'uninstalled') return 'uninstalled';
  if (lifecycle === 'active') {
    const health = applicableHealth(s);
    if (health?.state === 'degraded') return 'degraded';
    if (health?.state === 'reconnect_required') return 'reconnect_required';
    return 'active';
  }
  return pendingNewest(s) ? 'pending_validation' : 'not_connected';
}

/** What the person must know or do, for every state that needs it. */
function connectionError(s: ConnectionSnapshot, status: ConnectionStatus): ConnectionError | null {
  switch (status) {
    case 'disabled':
      return problem('key_compromised');
    case 'uninstalled':
      return problem('uninstalled');
    case 'degraded':
      return problem('degraded');
    case 'reconnect_required': {
      const missingScopes = stringList(applicableHealth(s)?.missingScopes);
      return missingScopes.length > 0 ? { ...problem('insufficient_scopes'), missingScopes } : problem('reconnect_required');
    }
    case 'pending_validation':
      return pendingError(pendingNewest(s)!);
    case 'not_connected':
      return notConnectedError(s);
    case 'active':
      return null;
  }
}

/** The newest key's rejection, else the one rotation recorded on the connection. */
function notConnectedError(s: ConnectionSnapshot): ConnectionError | null {
  if (s.newest && submissionStatus(s.newest) === 'rejected') {
    const reason = asRejectionReason(s.newest.rejectionReason);
    const missingScopes = stringList(s.newest.rejectionDetail?.missingScopes);
    return { ...problem(reason), ...(missingScopes.length > 0 ? { missingScopes } : {}) };
  }
  const code = s.connection?.errorCode;
  if (isProblemCode(code)) {
    const missingScopes = stringList(s.connection?.errorDetail?.missingScopes);
    return { ...problem(code), ...(missingScopes.length > 0 ? { missingScopes } : {}) };
  }
  return null;
}

export function connectionView(s: ConnectionSnapshot): ConnectionView {
  const status = connectionStatus(s);
  const health = applicableHealth(s);
  const connection = s.connection;
  const pending = pendingNewest(s);
  const validated = [connection?.lastValidatedAt, health?.lastValidatedAt].filter((d): d is Date => d instanceof Date);
  return {
    tenantId: s.tenantId,
    status,
    companyId: connection?.companyId ?? null,
    subject: connection?.subjectType ? { type: connection.subjectType, id: connection.subjectId } : null,
    scopes: s.activeCredential?.scopes ?? [],
    key: s.activeCredential ? keyView(s.activeCredential.last4) : null,
    activatedAt: iso(connection?.activatedAt),
    lastValidatedAt: validated.length > 0 ? new Date(Math.max(...validated.map((d) => d.getTime()))).toISOString() : null,
    health: {
      authFailures: health?.authFailures ?? 0,
      lastAuthFailureAt: iso(health?.lastAuthFailureAt),
      since: iso(health?.since ?? connection?.statusSince),
    },
    error: connectionError(s, status),
    pendingSubmission: pending
      ? {
          submissionId: pending.id,
          credentialId: pending.credentialId,
          status: 'pending_validation',
          key: keyView(pending.last4),
          submittedAt: pending.createdAt.toISOString(),
          lastError: pendingError(pending),
        }
      : null,
  };
}

function iso(date: Date | null | undefined): string | null {
  return date instanceof Date ? date.toISOString() : null;
}
