import { z } from 'zod';
import { TENANT_ID_PATTERN } from '@keyward/contracts';
import { apiShape, dateTime } from '../http/api-shapes';

const RETURN_URL_EXAMPLE = 'https://app.example.com/settings/pleo';

/** A bad tenant id answers `invalid_tenant_id`; any other bad field `invalid_request`. */
export const INSTALL_SESSION_REQUEST = apiShape(
  'InstallSessionRequest',
  z.strictObject({
    tenantId: z.string().regex(TENANT_ID_PATTERN).meta({ description: 'The tenant the session may submit a key for.', example: 'acme-42' }),
    returnUrl: z.string().min(1).max(2048).optional().meta({
      description: 'Where the connect page offers a "Continue" link after connecting. Must start with one of KEYWARD_CONNECT_RETURN_URLS (else 400 return_url_not_allowed).',
      example: RETURN_URL_EXAMPLE,
    }),
  }),
);

export const INSTALL_SESSION_REQUEST_FIELD_CODES = { tenantId: 'invalid_tenant_id' } as const;

export const INSTALL_SESSION = apiShape(
  'InstallSessionDto',
  z.object({
    token: z.string().meta({
      description: 'Bearer token for the browser install step. Shown once; only its hash is stored.',
      example: 'kM3vX0o1b8u1J0bq3wqk0Y7fZ0v7N2c3p9Qd6zY1a2E',
    }),
    tenantId: z.string().meta({ example: 'acme-42' }),
    expiresAt: dateTime(),
    connectUrl: z.string().meta({
      description:
        'The hosted connect page for this session: {KEYWARD_PUBLIC_URL}/connect#session=<token>. The token is in the fragment, which browsers never send to a server. Send the customer there.',
      example: 'https://keyward.example.com/connect#session=kM3vX0o1b8u1J0bq3wqk0Y7fZ0v7N2c3p9Qd6zY1a2E',
    }),
    returnUrl: z.string().nullable().meta({ example: RETURN_URL_EXAMPLE }),
  }),
);

export const INSTALL_SESSION_INFO = apiShape(
  'InstallSessionInfoDto',
  z.object({
    tenantId: z.string().meta({ example: 'acme-42' }),
    expiresAt: dateTime(),
    returnUrl: z.string().nullable().meta({ example: RETURN_URL_EXAMPLE }),
  }),
);
