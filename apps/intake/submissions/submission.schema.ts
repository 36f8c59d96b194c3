import { z } from 'zod';
import { REJECTION_REASONS } from '@keyward/contracts';
import { apiShape, dateTime, PROBLEM } from '../http/api-shapes';

/** `apiKey` may be missing (then it is empty: `key_empty`); nothing else is accepted. */
export const KEY_SUBMISSION = apiShape(
  'KeySubmissionBody',
  z.strictObject({
    apiKey: z
      .string()
      .max(64 * 1024)
      .default('')
      .meta({
        description:
          'The Integrated API Key exactly as Pleo showed it during installation. Surrounding whitespace is ignored. ' + 'It is never returned by any call; answers show only its last four characters.',
        writeOnly: true,
        format: 'password',
      }),
  }),
);

export const KEY_VIEW = apiShape(
  'KeyViewDto',
  z.object({
    last4: z.string().meta({ example: 'a1b2' }),
    masked: z.string().meta({ example: '••••••••a1b2' }),
  }),
);

export const SUBMISSION = apiShape(
  'SubmissionDto',
  z.object({
    submissionId: z.uuid(),
    credentialId: z.uuid().meta({ description: 'The credential (and secret version) this submission created.' }),
    status: z.enum(['pending_validation', 'accepted', 'rejected', 'superseded']),
    key: KEY_VIEW,
    submittedAt: dateTime(),
    reason: z.enum(REJECTION_REASONS).optional().meta({ description: 'Why the key was rejected.' }),
    missingScopes: z.array(z.string()).optional().meta({ description: 'Scopes the key lacks (insufficient_scopes).' }),
    message: z.string().optional().meta({ description: 'What failed, for a person (rejected).' }),
    action: z.string().optional().meta({ description: 'What to do next (rejected).' }),
    lastError: PROBLEM.optional().meta({ description: 'Why validation has not finished yet (e.g. Pleo unreachable).' }),
  }),
);
