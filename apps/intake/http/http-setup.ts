import { INestApplication } from '@nestjs/common';
import { SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import { KeywardConfig } from '@keyward/config';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { assignCorrelationId, runWithCorrelation } from './correlation';
import { readJsonBody } from './json-body';
import { rejectCredentialsInQuery } from './key-in-query';
import { buildOpenApiDocument } from './openapi';
import { observeRequests } from './request-log';

/** Answers about keys and tokens are never cached by a browser or proxy. */
function noStore(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/**
 * Express-level set-up, mounted before Nest's own body parsers: correlation id, access log and
 * metrics, the key-in-query refusal, a 16 KiB JSON-only body reader, then the correlation
 * context for everything after. API docs at /docs outside production.
 */
export function configureIntakeHttp(app: INestApplication, config: KeywardConfig): void {
  app.use(assignCorrelationId, observeRequests(app.get(KeywardLogger), app.get(Metrics)), noStore, rejectCredentialsInQuery, readJsonBody(), runWithCorrelation);
  if (config.nodeEnv !== 'production') SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app));
}
