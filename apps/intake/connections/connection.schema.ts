import { z } from 'zod';
import { SUBJECT_TYPES } from '@keyward/contracts';
import { apiShape, dateTime, PROBLEM } from '../http/api-shapes';
import { KEY_VIEW } from '../submissions/submission.schema';
import { CONNECTION_STATUSES } from './connection-status';

const SUBJECT = apiShape('SubjectDto', z.object({ type: z.enum(SUBJECT_TYPES), id: z.string().nullable() }));

const CONNECTION_HEALTH = apiShape('ConnectionHealthDto', z.object({ authFailures: z.number().int(), lastAuthFailureAt: dateTime().nullable(), since: dateTime().nullable() }));

const CONNECTION_ERROR = apiShape('ConnectionErrorDto', PROBLEM.extend({ missingScopes: z.array(z.string()).optional() }));

const PENDING_SUBMISSION = apiShape(
  'PendingSubmissionDto',
  z.object({
    submissionId: z.uuid(),
    credentialId: z.uuid(),
    status: z.enum(['pending_validation']),
    key: KEY_VIEW,
    submittedAt: dateTime(),
    lastError: PROBLEM.nullable(),
  }),
);

export const CONNECTION = apiShape(
  'ConnectionDto',
  z.object({
    tenantId: z.string(),
    status: z.enum(CONNECTION_STATUSES),
    companyId: z.string().nullable().meta({ description: 'The Pleo company the tenant is bound to.' }),
    subject: SUBJECT.nullable(),
    scopes: z.array(z.string()),
    key: KEY_VIEW.nullable().meta({ description: 'The key in use, as last4 and masked only.' }),
    activatedAt: dateTime().nullable(),
    lastValidatedAt: dateTime().nullable(),
    health: CONNECTION_HEALTH,
    error: CONNECTION_ERROR.nullable().meta({ description: 'What failed and what to do, for every state that needs it.' }),
    pendingSubmission: PENDING_SUBMISSION.nullable(),
  }),
);

export const UNINSTALL = apiShape(
  'UninstallDto',
  z.object({
    tenantId: z.string(),
    status: z.enum(['uninstalled']),
    revokedCredentialIds: z.array(z.uuid()).meta({ description: 'The keys this request revoked (the current one and every pending one); empty for a repeat.' }),
  }),
);
