import type { IncomingMessage, ServerResponse } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { GatewayService } from '../gateway.service';
import { gatewayTarget } from '../forwarding/pleo-path';

/**
 * Mounted before Nest's router and body parsers: calls under `/v1/tenants/{id}/pleo/api/` are
 * handled on the raw request (the body streams to Pleo untouched); everything else (health,
 * metrics) goes on to Nest.
 */
export function configureGatewayHttp(app: INestApplication): void {
  const gateway = app.get(GatewayService);
  app.use((req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, next: () => void) => {
    const target = gatewayTarget(req.originalUrl ?? req.url ?? '/');
    if (target.kind === 'not-gateway') return next();
    void gateway.handle(req, res, target);
  });
}
