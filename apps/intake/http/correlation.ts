import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CorrelationContext, correlationIdFrom, withCorrelation } from '@keyward/observability';

const CONTEXT = Symbol('keyward.correlation');

type WithContext = Request & { [CONTEXT]?: CorrelationContext };

/** Takes a well-formed `X-Correlation-Id` from the caller (or makes one) and echoes it back. */
export const assignCorrelationId: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
  const context: CorrelationContext = { correlationId: correlationIdFrom(req.headers['x-correlation-id']) };
  (req as WithContext)[CONTEXT] = context;
  res.setHeader('X-Correlation-Id', context.correlationId);
  next();
};

/**
 * Runs the rest of the request inside the correlation context, so every log line carries the id.
 * Mounted after the body is read: stream callbacks do not keep the context of the middleware.
 */
export const runWithCorrelation: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
  withCorrelation(correlationOf(req), () => next());
};

export function correlationOf(req: Request): CorrelationContext {
  const context = (req as WithContext)[CONTEXT];
  if (context) return context;
  const fresh = { correlationId: correlationIdFrom(req.headers['x-correlation-id']) };
  (req as WithContext)[CONTEXT] = fresh;
  return fresh;
}
