import { z } from 'zod';
import { apiShape } from '../http/api-shapes';
import { KEY_VIEW } from '../submissions/submission.schema';

/** Which key leaked; without it, the tenant's current key (or, once uninstalled, the last one). */
export const COMPROMISE_REPORT = apiShape(
  'CompromiseReportDto',
  z.strictObject({
    credentialId: z.uuid().optional().meta({ description: "The leaked key. Without it: the tenant's current key, or once uninstalled the last one in service." }),
  }),
);

export const COMPROMISE = apiShape(
  'CompromiseDto',
  z.object({
    status: z.enum(['disabled', 'revoked']).meta({
      description: 'disabled: the key was the current one and the connection is disabled. revoked: it was not current (pending, replaced or uninstalled) and can never be used again.',
    }),
    credentialId: z.uuid().meta({ description: 'The key this report revoked.' }),
    key: KEY_VIEW,
  }),
);
