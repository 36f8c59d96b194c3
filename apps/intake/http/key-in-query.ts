import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { Refusal } from '@keyward/contracts';

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

/**
 * The names of credential-like query parameters of a raw URL. Their values are not registered
 * for redaction: the request is refused unauthenticated, and no log line carries the URL's query
 * (the request log names the route template only).
 */
export function credentialParametersIn(url: string): string[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const found: string[] = [];
  for (const [name] of new URLSearchParams(url.slice(q + 1))) {
    if (isCredentialParameter(name)) found.push(name);
  }
  return found;
}

/**
 * A key or token in the query string ends up in proxy logs and browser history: refuse the whole
 * request before anything reads it, and never log the query.
 */
export const rejectCredentialsInQuery: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
  if (credentialParametersIn(req.originalUrl ?? req.url).length > 0) {
    next(new Refusal('key_in_query_rejected'));
    return;
  }
  next();
};
