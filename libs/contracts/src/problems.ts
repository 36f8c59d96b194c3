/**
 * Every code a person or a calling backend can see, with the message and the next step, in one
 * table. Messages are written for the customer pasting a key: what failed and what to do,
 * without jargon. Nothing here is ever built from a key value.
 */
export interface Problem {
  code: string;
  message: string;
  action: string;
}

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
    action: 'Install the integration for one company in Pleo and paste that company\'s key.',
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
  validation_gave_up: {
    message: 'Pleo could not be reached for a long time, so we stopped checking this key.',
    action: 'Paste the key again to retry the check.',
  },
  uninstalled: {
    message: 'The integration was disconnected from Pleo.',
    action: 'Install the integration again from Pleo to reconnect.',
  },
  // Format problems of a pasted key (caught before anything is stored).
  key_empty: { message: 'No API key was entered.', action: 'Paste the key Pleo showed you during installation.' },
  key_has_auth_scheme: {
    message: 'The pasted text starts with "Basic" or "Bearer".',
    action: 'Paste the key alone, without anything in front of it.',
  },
  key_inner_whitespace: {
    message: 'The pasted key contains spaces or line breaks.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_control_characters: {
    message: 'The pasted key contains invisible characters.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_not_ascii: {
    message: 'The pasted key contains characters a Pleo key never has.',
    action: 'Copy the key again with the copy button in Pleo and paste it without changes.',
  },
  key_too_short: {
    message: 'The pasted key is shorter than a Pleo API key.',
    action: 'Copy the whole key with the copy button in Pleo and paste it here.',
  },
  key_too_long: {
    message: 'The pasted text is longer than a Pleo API key.',
    action: 'Paste only the key Pleo showed you during installation.',
  },
  // The HTTP surface of intake: requests a caller must correct, and refusals.
  unauthenticated: {
    message: 'This request did not carry a valid access token.',
    action: 'Start the connection again from the integration, or ask its administrator for a valid token.',
  },
  install_session_expired: {
    message: 'This installation session has expired.',
    action: 'Start connecting Pleo again from the integration to get a new session.',
  },
  forbidden: {
    message: 'This access token may not do this for this customer.',
    action: 'Use a token issued for this customer and this action, or ask the integration\'s administrator.',
  },
  invalid_tenant_id: {
    message: 'The customer id is not valid.',
    action: 'Use 1 to 64 letters, digits, "-" or "_" as the customer id.',
  },
  not_found: {
    message: 'There is nothing at this address.',
    action: 'Check the address and method against the keyward API documentation.',
  },
  submission_not_found: {
    message: 'No key submission with this id exists for this customer.',
    action: 'Check the submission id, or paste the key again to submit it.',
  },
  key_in_query_rejected: {
    message: 'A key or token was sent in the address, where it can end up in logs and browser history. Nothing was stored.',
    action: 'Send the key in the JSON body and tokens in the Authorization header. If a real key was sent, generate a new one in Pleo.',
  },
  body_too_large: {
    message: 'The request is larger than this service accepts (16 KiB).',
    action: 'Send only the JSON fields this call accepts.',
  },
  unsupported_media_type: {
    message: 'The request body must be JSON.',
    action: 'Send the body as JSON with the header "Content-Type: application/json".',
  },
  malformed_json: {
    message: 'The request body is not valid JSON.',
    action: 'Check the JSON syntax of the request body and send it again.',
  },
  unknown_fields: {
    message: 'The request contains fields this call does not accept.',
    action: 'Remove the extra fields; the API documentation lists the fields of each call.',
  },
  invalid_request: {
    message: 'A field of the request is missing or has the wrong type.',
    action: 'Check the request against the API documentation and send it again.',
  },
  invalid_since: {
    message: 'The "since" parameter is not an ISO 8601 date and time.',
    action: 'Send it like 2025-01-31T12:00:00Z.',
  },
  rate_limited: {
    message: 'Too many keys were submitted in a short time.',
    action: 'Wait before trying again; the Retry-After header says how many seconds.',
  },
  no_active_key: {
    message: 'There is no active API key for this customer to switch off.',
    action: 'Nothing to disable. If a key was pasted but not yet accepted, generate a new key in Pleo and submit that instead.',
  },
  key_previously_compromised: {
    message: 'This API key was reported as exposed and cannot be used again.',
    action: 'Generate a new key for this integration in Pleo and paste it here.',
  },
  secret_store_unavailable: {
    message: 'The key could not be stored safely right now, so it was not saved.',
    action: 'Try again in a minute.',
  },
  database_unavailable: {
    message: 'Our database could not be reached, so nothing from this request was saved.',
    action: 'Try again in a minute; the Retry-After header says when.',
  },
  internal_error: {
    message: 'Something went wrong on our side.',
    action: 'Try again in a moment. If it keeps happening, contact support with the X-Correlation-Id of this response.',
  },
} as const satisfies Record<string, Omit<Problem, 'code'>>;

export type ProblemCode = keyof typeof table;

export function problem(code: ProblemCode): Problem {
  return { code, ...table[code] };
}

export const PROBLEM_CODES = Object.keys(table) as ProblemCode[];
