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
} as const satisfies Record<string, Omit<Problem, 'code'>>;

export type ProblemCode = keyof typeof table;

export function problem(code: ProblemCode): Problem {
  return { code, ...table[code] };
}

export const PROBLEM_CODES = Object.keys(table) as ProblemCode[];
