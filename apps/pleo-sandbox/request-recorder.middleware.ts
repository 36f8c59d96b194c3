import { Inject, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { authScheme, credentialLast4, readBasicCredential } from './basic-auth';
import { SandboxState } from './sandbox-state';

/**
 * In front of the Pleo-shaped API: records each request (credentials as last4, whether auth
 * came in a header, whether the query looked like it held a key) and applies the injected fault,
 * and Pleo's per-credential rate limit, so callers can be tested against slow, failing and
 * rate-limiting Pleo.
 */
@Injectable()
export class RequestRecorderMiddleware implements NestMiddleware {
  constructor(@Inject(SandboxState) private readonly state: SandboxState) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const url = new URL(req.originalUrl, 'http://sandbox.local');
    const header = req.headers.authorization;
    const basic = readBasicCredential(header);
    const fault = this.state.takeFault();
    const record = {
      at: new Date().toISOString(),
      method: req.method,
      path: url.pathname,
      authScheme: authScheme(header),
      credentialLast4: credentialLast4(header),
      authInHeader: header !== undefined && header.length > 0,
      queryHadKeyLikeValue: this.state.queryHasKeyLikeValue(url.searchParams),
      basicPasswordNotEmpty: basic !== undefined && basic.password.length > 0,
      userAgent: req.headers['user-agent'] ?? null,
      fault: fault ? `${fault.status ?? 'delay'}${fault.delayMs ? `+${fault.delayMs}ms` : ''}` : null,
      headerNames: Object.keys(req.headers).sort(),
    };
    res.on('finish', () => this.state.record({ ...record, status: res.statusCode }));

    const proceed = () => {
      if (res.destroyed) return;
      const retryAfter = basic ? this.state.admitCall(basic.username) : 0;
      if (fault?.status === undefined && retryAfter > 0) {
        res.setHeader('Retry-After', String(retryAfter));
        res.status(429).json({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'Rate limit exceeded for this API key.' });
        return;
      }
      if (fault?.status === undefined) return next();
      if (fault.status === 429) res.setHeader('Retry-After', String(fault.retryAfterSeconds));
      res.status(fault.status).json({
        type: 'about:blank',
        title: fault.status === 429 ? 'Too Many Requests' : fault.status === 503 ? 'Service Unavailable' : 'Internal Server Error',
        status: fault.status,
        detail: 'Injected by the Pleo sandbox.',
      });
    };
    if (fault && fault.delayMs > 0) setTimeout(proceed, fault.delayMs);
    else proceed();
  }
}
