import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import type { Response } from 'express';
import { KeywardLogger } from '@keyward/observability';
import { GatewayRefusal } from './gateway-refusal';

/** The gateway's few Nest routes (health, metrics, unknown paths) answer errors from the problem table too. */
@Catch()
export class GatewayProblemFilter implements ExceptionFilter {
  constructor(@Inject(KeywardLogger) private readonly logger: KeywardLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const res = host.switchToHttp().getResponse<Response>();
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    if (status >= 500) this.logger.error('Request failed unexpectedly', { err: exception });
    const refusal = status === 404 || status === 405 ? new GatewayRefusal(404, 'not_found') : status < 500 ? new GatewayRefusal(status, 'invalid_request') : new GatewayRefusal(500, 'internal_error');
    if (res.headersSent) return void res.end();
    res.status(refusal.status).type('application/json').send(refusal.body());
  }
}
