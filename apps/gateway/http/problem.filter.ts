import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import type { Response } from 'express';
import { Refusal } from '@keyward/contracts';
import { KeywardLogger } from '@keyward/observability';

/** The gateway's few Nest routes (health, metrics, unknown paths) answer errors from the problem table too. */
@Catch()
export class GatewayProblemFilter implements ExceptionFilter {
  constructor(@Inject(KeywardLogger) private readonly logger: KeywardLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const res = host.switchToHttp().getResponse<Response>();
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    if (status >= 500) this.logger.error('Request failed unexpectedly', { err: exception });
    const refusal = new Refusal(status === 404 ? 'not_found' : status === 405 ? 'method_not_allowed' : status < 500 ? 'invalid_request' : 'internal_error');
    if (res.headersSent) return void res.end();
    res.status(refusal.status).type('application/json').send(JSON.stringify(refusal.body()));
  }
}
