/**
 * The channel on which the deciding transaction of a submission notifies (a trigger on
 * `credentials` and `submissions`, migration 1764360000000), and the one that answers a
 * connection check (a trigger on `audit_log`, migration 1764400000000). The payload carries ids
 * only: `{"tenantId": "…", "submissionId": "…"}` or `{"tenantId": "…", "checkId": "…"}`. It is a
 * wake-up, never the answer.
 */
export const SUBMISSION_DECIDED_CHANNEL = 'keyward_submission_decided';

export type SubmissionDecided = { tenantId: string; submissionId: string } | { tenantId: string; checkId: string };

/** The ids of a notification's payload, or null when it is not one of ours. */
export function parseSubmissionDecided(payload: string): SubmissionDecided | null {
  try {
    const value = JSON.parse(payload) as Partial<Record<'tenantId' | 'submissionId' | 'checkId', unknown>> | null;
    if (typeof value?.tenantId !== 'string') return null;
    if (typeof value.submissionId === 'string') return { tenantId: value.tenantId, submissionId: value.submissionId };
    if (typeof value.checkId === 'string') return { tenantId: value.tenantId, checkId: value.checkId };
    return null;
  } catch {
    return null;
  }
}
