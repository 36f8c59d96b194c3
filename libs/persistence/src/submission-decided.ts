/**
 * The channel on which the deciding transaction of a submission notifies (a trigger on
 * `credentials` and `submissions`, migration 1764360000000). The payload carries ids only:
 * `{"tenantId": "…", "submissionId": "…"}`. It is a wake-up, never the answer.
 */
export const SUBMISSION_DECIDED_CHANNEL = 'keyward_submission_decided';

export interface SubmissionDecided {
  tenantId: string;
  submissionId: string;
}

/** The ids of a notification's payload, or null when it is not one of ours. */
export function parseSubmissionDecided(payload: string): SubmissionDecided | null {
  try {
    const value = JSON.parse(payload) as Partial<Record<keyof SubmissionDecided, unknown>> | null;
    if (typeof value?.tenantId !== 'string' || typeof value.submissionId !== 'string') return null;
    return { tenantId: value.tenantId, submissionId: value.submissionId };
  } catch {
    return null;
  }
}
