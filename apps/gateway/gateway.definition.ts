import { ServiceDefinition } from '@keyward/bootstrap';
import { configureGatewayHttp } from './http/gateway-http';
import { GatewayModule } from './gateway.module';

/** What `main.ts` starts and what the tests build: HTTP only, no consumed queue. */
export function gatewayService(): ServiceDefinition {
  return { module: GatewayModule, configureApp: (app) => configureGatewayHttp(app) };
}
