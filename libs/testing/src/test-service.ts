import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { attachEventServer, ServiceDefinition, serviceRootModule } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { KeywardLogger, NestLoggerAdapter } from '@keyward/observability';

/**
 * A service as it runs in production — its definition behind the same root module, HTTP set-up and
 * event transport as `startService` — built through Nest's testing module, not yet listening on a
 * port (supertest talks to it directly).
 */
export async function startTestService(definition: ServiceDefinition, config: KeywardConfig, logger: KeywardLogger): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [serviceRootModule(definition, config, logger)] }).compile();
  const app = moduleRef.createNestApplication({ logger: new NestLoggerAdapter(logger) });
  definition.configureApp?.(app);
  await app.init();
  await attachEventServer(app, definition, config);
  return app;
}
