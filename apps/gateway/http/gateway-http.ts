import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { GatewayService } from '../gateway.service';
import { gatewayTarget } from '../forwarding/pleo-path';

/**
 * Calls under `/v1/tenants/{id}/pleo/api/` are taken from the HTTP server itself, ahead of
 * Express and Nest: the raw request streams to Pleo untouched and no router, body parser or
 * middleware runs for them (ADR 0028). Everything else (health, metrics, unknown paths) goes on
 * to Nest as before.
 */
export function configureGatewayHttp(app: INestApplication): void {
  const gateway = app.get(GatewayService);
  const server = app.getHttpServer() as Server;
  const nest = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const target = gatewayTarget(req.url ?? '/');
    if (target.kind !== 'not-gateway') return void gateway.handle(req, res, target);
    for (const listener of nest) listener(req, res);
  });
}
