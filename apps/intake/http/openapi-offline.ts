import { NestFactory } from '@nestjs/core';
import { OpenAPIObject } from '@nestjs/swagger';
import { serviceRootModule } from '@keyward/bootstrap';
import { KeywardConfig } from '@keyward/config';
import { KeywardLogger } from '@keyward/observability';
import { intakeService } from '../intake.definition';
import { buildOpenApiDocument } from './openapi';

/**
 * The same document without Postgres, RabbitMQ or a secret backend: Nest's preview mode scans
 * modules and routes without creating providers. Used by scripts/write-openapi.ts.
 */
export async function openApiDocumentOffline(config: KeywardConfig): Promise<OpenAPIObject> {
  const definition = intakeService(config);
  const app = await NestFactory.create(serviceRootModule(definition, config, KeywardLogger.create('intake', 'silent')), { preview: true, logger: false });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}
