import { z } from 'zod';
import { PROBLEM_SHAPE } from './http-shapes';

/**
 * Every code a person or a calling backend can see, with the message and the next step, in one
 * table. Messages are written for the customer pasting a key: what failed and what to do,
 * without jargon. Nothing here is ever built from a key value. A code that answers a request
 * (a refusal) carries its HTTP status here too; the others describe states and reasons.
 */
export type Problem = z.infer<typeof PROBLEM_SHAPE>;

const table = {
  // Why a submitted key was not accepted (key.rejected reasons).
  invalid_key: {
    message: 'Pleo did not accept this API key.',
    action: 'Copy the key again from the Pleo installation screen and paste it here.',
  },
  company_mismatch: {
    message: 'This API key belongs to a different Pleo company than the one this integration is connected to.',
    action: 'Open Pleo for the company already connected here, generate a key for this integration and paste it.',
  },
  insufficient_scopes: {
    message: 'This API key is missing permissions the integration needs.',
    action: 'Reinstall the integration in Pleo, approve all requested permissions, and paste the new key.',
  },
  unsupported_subject: {
    message: 'This API key is for a Pleo organisation, but the integration connects to a single company.',
    action: "Install the integration for one company in Pleo and paste that company's key.",
  },
  malformed_key: {
    message: 'This does not look like a Pleo API key.',
    action: 'Copy the whole key from the Pleo installation screen, with nothing before or after it, and paste it here.',
  },
  // Connection states that need the customer.
  reconnect_required: {
    message: 'Pleo no longer accepts the saved API key, so the integration has stopped syncing.',
    action: 'Generate a new key for this integration in Pleo and paste it here to reconnect.',
  },
  key_compromised: {
    message: 'The saved API key was reported as exposed and has been switched off.',
    action: 'Generate a replacement key for this integration in Pleo and paste it here.',
  },
  degraded: {
    message: 'Recent calls to Pleo with the saved key failed; we are checking the key now.',
    action: 'No action needed yet. If this lasts, we will ask you to reconnect.',
  },
  pleo_unreachable: {
    message: 'Pleo could not be reached; we will retry automatically.',
    action: 'No action needed. The key will be checked as soon as Pleo answers again.',
  },
  pleo_slow: {
    message: 'Pleo has not answered yet.',
    action: 'Keep this page open: we keep checking and show the result here.',
  },
  submission_superseded: {
    message: 'Another key was submitted for this connection while this one was being checked.',
    action: 'Paste the key again if it is the one you want to use.',
  },
  validation_gave_up: {
    message: 'Pleo could not be reached for a long time, so we stopped checking this key.',
    action: 'Paste the key again to retry the check.',
  },
  uninstalled: {
    message: 'The integration was disconnected from Pleo.',
    action: 'Install the integration again from Pleo to reconnect.',
  },
  // Format problems of a pasted key (caught before anything is stored).
  key_empty: { status: 400, message: 'No API key was entered.', action: 'Paste the key Pleo showed you during installation.' },
  key_has_auth_scheme: {
    status: 400,
    message: 'The pasted text starts with "Basic" or "Bearer".',
    action: 'Paste the key alone, without anything in front of it.',
  },
  key_inner_whitespace: {
    status: 400,
    message: 'The pasted key contains spaces or line breaks.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_control_characters: {
    status: 400,
    message: 'The pasted key contains invisible characters.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_not_ascii: {
    status: 400,
    message: 'The pasted key contains characters a Pleo key never has.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_too_short: {
    status: 400,
    message: 'The pasted key is shorter than a Pleo API key.',
    action: 'Copy the whole key with the copy button in Pleo and paste it here.',
  },
  key_too_long: {
    status: 400,
    message: 'The pasted text is longer than a Pleo API key.',
    action: 'Paste only the key Pleo showed you during installation.',
  },
  // The HTTP surface of intake: requests a caller must correct, and refusals.
  unauthenticated: {
    status: 401,
    message: 'This request did not carry a valid access token.',
    action: 'Start the connection again from the integration, or ask its administrator for a valid token.',
  },
  install_session_expired: {
    status: 401,
    message: 'This installation session has expired.',
    action: 'Start connecting Pleo again from the integration to get a new session.',
  },
  install_session_used: {
    status: 409,
    message: 'This connection link was already used to connect Pleo.',
    action: 'To change the key, start connecting Pleo again from the integration to get a new link.',
  },
  install_session_missing: {
    status: 401,
    message: 'This connection link is incomplete.',
    action: 'Start connecting Pleo again from the integration and open the link it gives you.',
  },
  return_url_not_allowed: {
    status: 400,
    message: 'The return address is not one this service may send customers back to.',
    action: 'Use a returnUrl that starts with one of the addresses in KEYWARD_CONNECT_RETURN_URLS, or leave it out.',
  },
  connection_not_checkable: {
    status: 409,
    message: 'There is no connected API key to check for this customer.',
    action: 'Connect a key first; a check is possible once the connection is active.',
  },
  check_not_found: {
    status: 404,
    message: 'No connection check with this id exists for this customer.',
    action: 'Check the id, or ask for a new check.',
  },
  check_rate_limited: {
    status: 429,
    message: 'This connection was checked too often in the last hour.',
    action: 'Wait before checking again; the Retry-After header says how many seconds.',
  },
  invalid_cursor: {
    status: 400,
    message: 'The cursor is not one this service gave out.',
    action: 'Start again without a cursor and follow nextCursor from each answer.',
  },
  invalid_query: {
    status: 400,
    message: 'A query parameter has a value this call does not accept.',
    action: 'Check status, limit and the other parameters against the API documentation.',
  },
  alert_not_found: {
    status: 404,
    message: 'No alert delivery with this id exists.',
    action: 'Take the id from GET /v1/alerts/deliveries.',
  },
  alert_no_longer_available: {
    status: 410,
    message: 'This alert is too old to send again; its body is no longer kept.',
    action: "Read the tenant's current state from GET /v1/tenants/{tenantId}/pleo/connection instead.",
  },
  forbidden: {
    status: 403,
    message: 'This access token may not do this for this customer.',
    action: "Use a token issued for this customer and this action, or ask the integration's administrator.",
  },
  invalid_tenant_id: {
    status: 400,
    message: 'The customer id is not valid.',
    action: 'Use 1 to 64 letters, digits, "-" or "_" as the customer id.',
  },
  not_found: {
    status: 404,
    message: 'There is nothing at this address.',
    action: 'Check the address and method against the keyward API documentation.',
  },
  method_not_allowed: {
    status: 405,
    message: 'This address does not accept this method.',
    action: 'Use one of the methods in the Allow header, as the keyward API documentation lists them.',
  },
  submission_not_found: {
    status: 404,
    message: 'No key submission with this id exists for this customer.',
    action: 'Check the submission id, or paste the key again to submit it.',
  },
  key_in_query_rejected: {
    status: 400,
    message: 'A key or token was sent in the address, where it can end up in logs and browser history. Nothing was stored.',
    action: 'Send the key in the JSON body and tokens in the Authorization header. If a real key was sent, generate a new one in Pleo.',
  },
  body_too_large: {
    status: 413,
    message: 'The request is larger than this service accepts (16 KiB).',
    action: 'Send only the JSON fields this call accepts.',
  },
  unsupported_media_type: {
    status: 415,
    message: 'The request body must be JSON.',
    action: 'Send the body as JSON with the header "Content-Type: application/json".',
  },
  malformed_json: {
    status: 400,
    message: 'The request body is not valid JSON.',
    action: 'Check the JSON syntax of the request body and send it again.',
  },
  unknown_fields: {
    status: 400,
    message: 'The request contains fields this call does not accept.',
    action: 'Remove the extra fields; the API documentation lists the fields of each call.',
  },
  invalid_request: {
    status: 400,
    message: 'A field of the request is missing or has the wrong type.',
    action: 'Check the request against the API documentation and send it again.',
  },
  invalid_since: {
    status: 400,
    message: 'The "since" parameter is not an ISO 8601 date and time.',
    action: 'Send it like 2025-01-31T12:00:00Z.',
  },
  rate_limited: {
    status: 429,
    message: 'Too many requests were made in a short time.',
    action: 'Wait before trying again; the Retry-After header says how many seconds.',
  },
  no_active_key: {
    status: 409,
    message: 'There is no active API key for this customer to switch off.',
    action: 'Nothing to disable. If a key was pasted but not yet accepted, generate a new key in Pleo and submit that instead.',
  },
  credential_not_found: {
    status: 404,
    message: 'No key with this credential id was ever submitted for this customer.',
    action: 'Check the credentialId (it is in the answer of the submission and in the audit log), or leave it out to mean the active key.',
  },
  key_previously_compromised: {
    status: 422,
    message: 'This API key was reported as exposed and cannot be used again.',
    action: 'Generate a new key for this integration in Pleo and paste it here.',
  },
  secret_store_unavailable: {
    status: 503,
    message: 'The key could not be stored safely right now, so it was not saved.',
    action: 'Try again in a minute.',
  },
  database_unavailable: {
    status: 503,
    message: 'Our database could not be reached, so nothing from this request was saved.',
    action: 'Try again in a minute; the Retry-After header says when.',
  },
  // The credential gateway: refusals of a call to Pleo made through keyward (no call was made).
  tenant_not_found: {
    status: 404,
    message: 'keyward knows no Pleo connection for this customer.',
    action: "Check the customer id, or connect the customer's Pleo account first.",
  },
  connection_not_active: {
    status: 409,
    message: 'The Pleo connection of this customer is not active, so the call was not made.',
    action: "Read the connection's status (GET /v1/tenants/{tenantId}/pleo/connection) and ask the customer to reconnect if it says so.",
  },
  invalid_pleo_path: {
    status: 400,
    message: 'The Pleo path is not valid (it is empty, climbs out with "..", or holds an encoded slash).',
    action: 'Send the Pleo API path as documented, e.g. /v1/tenants/{tenantId}/pleo/api/v1/employees.',
  },
  pleo_request_too_large: {
    status: 413,
    message: 'The request body is larger than the gateway forwards.',
    action: 'Send a smaller body, or ask the operator to raise KEYWARD_GATEWAY_MAX_BODY_BYTES.',
  },
  pleo_bad_gateway: {
    status: 502,
    message: 'Pleo could not be reached, or broke off its answer.',
    action: 'Try the call again later; nothing was changed in keyward.',
  },
  pleo_timeout: {
    status: 504,
    message: 'Pleo did not answer in time.',
    action: 'Try the call again later. A call that changes data may have reached Pleo; check before repeating it.',
  },
  gateway_unavailable: {
    status: 503,
    message: 'keyward could not prepare this call right now (the key or the call budget could not be read), so it was not made.',
    action: 'Try again in a moment.',
  },
  internal_error: {
    status: 500,
    message: 'Something went wrong on our side.',
    action: 'Try again in a moment. If it keeps happening, contact support with the X-Correlation-Id of this response.',
  },
} as const satisfies Record<string, Omit<Problem, 'code'> & { status?: number }>;

type Table = typeof table;
export type ProblemCode = keyof Table;
/** The codes an HTTP edge answers a request with; each carries its status in the table. */
export type RefusalCode = { [K in ProblemCode]: Table[K] extends { status: number } ? K : never }[ProblemCode];

export function problem(code: ProblemCode): Problem {
  const { message, action } = table[code];
  return { code, message, action };
}

/** The HTTP status a refusal with this code is answered with. */
export function refusalStatus(code: RefusalCode): number {
  return table[code].status;
}

export const PROBLEM_CODES = Object.keys(table) as ProblemCode[];
