import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '@keyward/config';
import { gatewayOpenApiDocument } from '../apps/gateway/http/openapi';
import { openApiDocumentOffline } from '../apps/intake/http/openapi-offline';

/** Writes intake's OpenAPI description (default docs/openapi.json) and the gateway's (docs/openapi-gateway.json); needs no database or broker. */
async function main(): Promise<void> {
  const target = resolve(process.cwd(), process.argv[2] ?? 'docs/openapi.json');
  const document = await openApiDocumentOffline(loadConfig('intake', { ...process.env, NODE_ENV: 'development' }));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
  process.stdout.write(`Wrote ${target}\n`);
  if (process.argv[2] === undefined) {
    const gateway = resolve(process.cwd(), 'docs/openapi-gateway.json');
    writeFileSync(gateway, `${JSON.stringify(gatewayOpenApiDocument(), null, 2)}\n`);
    process.stdout.write(`Wrote ${gateway}\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`write-openapi failed: ${(error as Error)?.message ?? error}\n`);
  process.exit(1);
});
