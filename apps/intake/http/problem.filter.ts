import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Refusal, RefusalCode } from '@keyward/contracts';
import { isDependencyUnavailable } from '@keyward/messaging';
import { KeywardLogger } from '@keyward/observability';
import { routeTemplate } from './request-log';

/** Statuses Nest or Express may raise themselves, answered with a code from the problem table. */
const BY_STATUS: Record<number, RefusalCode> = {
  400: 'invalid_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/**
 * Every error answer of intake is `{"error":{"code","message","action"}}` from the problem
 * table: no stack trace, no library message, nothing from the request echoed back.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(@Inject(KeywardLogger) private readonly logger: KeywardLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    const error = this.toRefusal(exception, req);
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
    res.status(error.status).json(error.body());
  }

  private toRefusal(exception: unknown, req: Request): Refusal {
    if (exception instanceof Refusal) return exception;
    const status = statusOf(exception);
    if (status !== undefined && status < 500 && BY_STATUS[status]) {
      // Body-parser and router errors: the status is meaningful, the message is not for callers.
      return new Refusal(BY_STATUS[status]);
    }
    if (isDependencyUnavailable(exception)) {
      // Postgres down or restarting: every write is one transaction, so nothing was kept half way.
      this.logger.warn('Request refused: the database is unavailable', { route: routeTemplate(req), method: req.method, err: exception });
      return new Refusal('database_unavailable', { headers: { 'Retry-After': '5' } });
    }
    this.logger.error('Request failed unexpectedly', { route: routeTemplate(req), method: req.method, err: exception });
    return new Refusal('internal_error');
  }
}

function statusOf(exception: unknown): number | undefined {
  if (exception instanceof HttpException) return exception.getStatus();
  const status = (exception as { status?: unknown; statusCode?: unknown } | null)?.status ?? (exception as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
