import { ServiceDefinition } from '@keyward/bootstrap';
import { configureGatewayHttp } from './http/gateway-http';
import { GatewayModule } from './gateway.module';

/** What `main.ts` starts and what the tests build: HTTP only, no consumed queue. */
export function gatewayService(): ServiceDefinition {
  // One access line per call: written 4 KiB at a time, not one write per line (ADR 0028).
  return { module: GatewayModule, configureApp: (app) => configureGatewayHttp(app), logBufferBytes: 4096 };
}
