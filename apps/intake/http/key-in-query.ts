import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { registerSecret } from '@keyward/observability';
import { IntakeError } from './intake-error';

/** Parameter names that say "credential" once case, `-`, `_` and `.` are ignored. */
const CREDENTIAL_NAMES = new Set([
  'apikey',
  'key',
  'pleokey',
  'pleoapikey',
  'integratedapikey',
  'token',
  'accesstoken',
  'apitoken',
  'bearer',
  'sessiontoken',
  'installsessiontoken',
  'secret',
  'clientsecret',
  'password',
  'auth',
  'authorization',
  'credential',
  'credentials',
]);

export function isCredentialParameter(name: string): boolean {
  return CREDENTIAL_NAMES.has(name.toLowerCase().replace(/[-_.[\]]/g, ''));
}

/** The names of credential-like query parameters of a raw URL (their values are registered as secrets). */
export function credentialParametersIn(url: string): string[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const found: string[] = [];
  for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
    if (isCredentialParameter(name)) {
      registerSecret(value);
      found.push(name);
    }
  }
  return found;
}

/**
 * A key or token in the query string ends up in proxy logs and browser history: refuse the whole
 * request before anything reads it, and never log the query.
 */
export const rejectCredentialsInQuery: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
  if (credentialParametersIn(req.originalUrl ?? req.url).length > 0) {
    next(new IntakeError(400, 'key_in_query_rejected'));
    return;
  }
  next();
};
