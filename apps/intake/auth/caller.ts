import type { Request } from 'express';

/** Who is calling: an integration backend (service token) or a browser install step (session). */
export type Caller =
  | { kind: 'service'; name: string; actor: string; rateKey: string }
  | {
      kind: 'install-session';
      tenantId: string;
      expiresAt: Date;
      actor: 'install-session';
      rateKey: string;
      /** The session's row (its token's SHA-256); the token itself is never kept. */
      tokenHash: string;
      /** A key submitted with this session was accepted: it may read, not submit again. */
      used: boolean;
    };

export type CallerKind = Caller['kind'];

const CALLER = Symbol('keyward.caller');

export function attachCaller(req: Request, caller: Caller): void {
  (req as Request & { [CALLER]?: Caller })[CALLER] = caller;
}

/** The caller the guard authenticated; a route without the guard has none. */
export function callerOf(req: Request): Caller {
  const caller = (req as Request & { [CALLER]?: Caller })[CALLER];
  if (!caller) throw new Error('No authenticated caller on this request (is CallerGuard applied?)');
  return caller;
}
