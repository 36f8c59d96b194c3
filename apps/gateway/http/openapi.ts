import { z } from 'zod';
import { openApiSchema, problem, PROBLEM_SHAPE, RefusalCode, refusalStatus, TENANT_ID_PATTERN } from '@keyward/contracts';

const PATH = '/v1/tenants/{tenantId}/pleo/api/{pleoPath}';

/**
 * Every refusal the gateway answers itself (the body is `{"error":{code,message,action}}`), grouped
 * by the HTTP status the problem table gives their codes.
 */
export const GATEWAY_REFUSALS: { description: string; codes: [RefusalCode, ...RefusalCode[]]; headers?: Record<string, string> }[] = [
  { description: 'Malformed tenant id or Pleo path (climbs out with `..`, encoded or not; encoded slash; empty)', codes: ['invalid_tenant_id', 'invalid_pleo_path', 'invalid_request'] },
  { description: 'No bearer token, or not a service token keyward knows', codes: ['unauthenticated'], headers: { 'WWW-Authenticate': 'Bearer' } },
  { description: 'An install-session token: the browser step may not call Pleo', codes: ['forbidden'] },
  { description: 'keyward knows no connection or submission for this tenant', codes: ['tenant_not_found'] },
  { description: 'A method other than GET, POST, PUT, PATCH, DELETE', codes: ['method_not_allowed'], headers: { Allow: 'methods' } },
  {
    description: 'The connection is not `active` or `degraded` (its status is in the message and in `error.status`); no call was made',
    codes: ['connection_not_active'],
  },
  { description: 'Request body over KEYWARD_GATEWAY_MAX_BODY_BYTES (default 10 MiB)', codes: ['pleo_request_too_large'] },
  {
    description: "The credential's budget (KEYWARD_GATEWAY_RATE_PER_MINUTE across all replicas) is spent; the call was not sent. Pleo's own 429 is passed through as is, with its Retry-After.",
    codes: ['rate_limited'],
    headers: { 'Retry-After': 'seconds' },
  },
  { description: 'Pleo could not be reached', codes: ['pleo_bad_gateway'] },
  { description: 'The key or the call budget could not be read (Postgres or the secret backend); no call was made', codes: ['gateway_unavailable'], headers: { 'Retry-After': 'seconds' } },
  { description: 'Pleo did not answer within PLEO_TIMEOUT_MS', codes: ['pleo_timeout'] },
];

/** The gateway's refusal body: the shared one, and the connection's status for `connection_not_active`. */
const GATEWAY_ERROR_BODY = z.object({
  error: PROBLEM_SHAPE.extend({
    status: z
      .enum(['not_connected', 'pending_validation', 'reconnect_required', 'disabled', 'uninstalled'])
      .optional()
      .meta({ description: "Only for connection_not_active: the connection's status" }),
  }),
});

/** The gateway's OpenAPI description (docs/openapi-gateway.json, written by `npm run openapi`). */
export function gatewayOpenApiDocument(): Record<string, unknown> {
  const refusals = Object.fromEntries(
    GATEWAY_REFUSALS.map((r) => [
      String(refusalStatus(r.codes[0])),
      {
        description: `${r.description}. Codes: ${r.codes.map((c) => `\`${c}\``).join(', ')}. Unless a Pleo answer with this status came through.`,
        ...(r.headers ? { headers: Object.fromEntries(Object.keys(r.headers).map((h) => [h, { schema: { type: 'string' } }])) } : {}),
        content: {
          'application/json': {
            schema: { $ref: '#/components/schemas/Error' },
            examples: Object.fromEntries(r.codes.map((code) => [code, { value: { error: problem(code) } }])),
          },
        },
      },
    ]),
  );
  const operation = (method: string) => ({
    operationId: `pleo${method}`,
    summary: `${method} a Pleo API path as the tenant`,
    description:
      "Forwards to `{PLEO_API_BASE_URL}/{pleoPath}` with the query string and body as sent and the tenant's current key as HTTP Basic. " +
      "The caller's Authorization, cookies and hop-by-hop headers are not forwarded. Pleo's status, headers (minus hop-by-hop and WWW-Authenticate) " +
      'and body come back streamed. A 401/403 from Pleo is passed through and reported to the monitor as auth.failed.',
    tags: ['gateway'],
    security: [{ serviceToken: [] }],
    parameters: [
      { name: 'tenantId', in: 'path', required: true, schema: { type: 'string', pattern: TENANT_ID_PATTERN.source } },
      { name: 'pleoPath', in: 'path', required: true, description: 'The Pleo API path, e.g. `v1/employees`; may hold several segments', schema: { type: 'string' } },
      { name: 'X-Correlation-Id', in: 'header', required: false, schema: { type: 'string' } },
    ],
    ...(method === 'GET' || method === 'DELETE' ? {} : { requestBody: { required: false, content: { '*/*': { schema: {} } } } }),
    responses: {
      default: { description: "Pleo's answer, as Pleo gave it (X-Correlation-Id added)", headers: { 'X-Correlation-Id': { schema: { type: 'string' } } } },
      ...refusals,
    },
  });
  return {
    openapi: '3.0.0',
    info: {
      title: 'keyward gateway',
      version: '0.1.0',
      description:
        "Calls Pleo as a tenant without ever holding the tenant's key: service tokens only. Only `active` and `degraded` connections are forwarded. " +
        'After intake has answered a compromise call, no call with that key starts from any replica.',
    },
    servers: [{ url: 'http://localhost:3004' }],
    paths: { [PATH]: Object.fromEntries(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [m.toLowerCase(), operation(m)])) },
    components: {
      securitySchemes: { serviceToken: { type: 'http', scheme: 'bearer', description: 'A service token of KEYWARD_SERVICE_TOKENS' } },
      schemas: { Error: openApiSchema(GATEWAY_ERROR_BODY) },
    },
  };
}
