import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { IntakeModule } from '../intake.module';
import { shapeComponents } from './api-shapes';

/**
 * The OpenAPI description of intake's API (served at /docs outside production; `npm run openapi`
 * writes it). Routes refer to their shapes by `$ref`; the component schemas are generated from
 * the zod schemas the controllers check and type with (api-shapes.ts).
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('keyward intake')
    .setDescription(
      "Takes Pleo Integrated API Keys in, shows the state of a tenant's connection, and handles compromise reports and uninstalls. " +
        'Keys are accepted in request bodies only and never returned; errors are {"error":{"code","message","action"}}. ' +
        'Customers paste their key on the hosted page GET /connect#session=<token> (the connectUrl of an install session). ' +
        'Alert webhooks follow the Standard Webhooks specification (webhook-id, webhook-timestamp, webhook-signature).',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A service token, or an install session token for one tenant.' })
    .build();
  const document = SwaggerModule.createDocument(app, config, { include: [IntakeModule] });
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...shapeComponents() } };
  return document;
}
