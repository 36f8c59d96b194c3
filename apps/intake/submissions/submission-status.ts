import { PROBLEM_CODES, problem, Problem, ProblemCode, REJECTION_REASONS, RejectionReason } from '@keyward/contracts';
import { maskLast4 } from '@keyward/key-material';

export type SubmissionStatus = 'pending_validation' | 'accepted' | 'rejected' | 'superseded';

/** A submission joined with what the other services decided about its credential. */
export interface SubmissionRecord {
  id: string;
  tenantId: string;
  credentialId: string;
  last4: string;
  fingerprint: string;
  createdAt: Date;
  supersededAt: Date | null;
  /** The credentials row (rotation), once it decided. */
  credentialStatus: 'active' | 'rejected' | 'invalidated' | null;
  rejectionReason: string | null;
  rejectionDetail: Record<string, unknown> | null;
  /** validation_attempts (validator): why it is still pending. */
  lastErrorCode: string | null;
  parkedAt: Date | null;
}

export interface KeyView {
  last4: string;
  masked: string;
}

export interface SubmissionView {
  submissionId: string;
  credentialId: string;
  status: SubmissionStatus;
  key: KeyView;
  submittedAt: string;
  reason?: RejectionReason;
  missingScopes?: string[];
  message?: string;
  action?: string;
  lastError?: Problem;
}

export function keyView(last4: string): KeyView {
  return { last4, masked: maskLast4(last4) };
}

export function isFinal(status: SubmissionStatus): boolean {
  return status !== 'pending_validation';
}

/** Derived as ARCHITECTURE.md says: superseded, then the credential's decision, else pending. */
export function submissionStatus(record: SubmissionRecord): SubmissionStatus {
  if (record.supersededAt) return 'superseded';
  if (record.credentialStatus === 'rejected') return 'rejected';
  if (record.credentialStatus === 'active' || record.credentialStatus === 'invalidated') return 'accepted';
  return 'pending_validation';
}

export function submissionView(record: SubmissionRecord): SubmissionView {
  const status = submissionStatus(record);
  const view: SubmissionView = {
    submissionId: record.id,
    credentialId: record.credentialId,
    status,
    key: keyView(record.last4),
    submittedAt: record.createdAt.toISOString(),
  };
  if (status === 'rejected') Object.assign(view, rejection(record));
  if (status === 'pending_validation') {
    const lastError = pendingError(record);
    if (lastError) view.lastError = lastError;
  }
  return view;
}

/** Why a pending credential is still pending, for a person; null when nothing went wrong yet. */
export function pendingError(record: Pick<SubmissionRecord, 'lastErrorCode' | 'parkedAt'>): Problem | null {
  if (record.parkedAt) return problem('validation_gave_up');
  if (record.lastErrorCode) return problem('pleo_unreachable');
  return null;
}

function rejection(record: SubmissionRecord): Pick<SubmissionView, 'reason' | 'missingScopes' | 'message' | 'action'> {
  const reason = asRejectionReason(record.rejectionReason);
  const described = problem(reason);
  const missingScopes = stringList(record.rejectionDetail?.missingScopes);
  const detailMessage = record.rejectionDetail?.message;
  return {
    reason,
    ...(missingScopes.length > 0 ? { missingScopes } : {}),
    message: typeof detailMessage === 'string' && detailMessage.trim() !== '' ? detailMessage : described.message,
    action: described.action,
  };
}

/** An unknown reason (newer validator) is shown as the generic one rather than dropped. */
export function asRejectionReason(value: string | null | undefined): RejectionReason {
  return (REJECTION_REASONS as readonly string[]).includes(value ?? '') ? (value as RejectionReason) : 'invalid_key';
}

export function isProblemCode(value: unknown): value is ProblemCode {
  return typeof value === 'string' && (PROBLEM_CODES as string[]).includes(value);
}

export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
