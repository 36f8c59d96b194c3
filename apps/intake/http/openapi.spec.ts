import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '@keyward/config';
import { openApiDocumentOffline } from './openapi-offline';

describe('OpenAPI document', () => {
  it('is built without infrastructure and marks the key write-only and masked', async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }));
    expect(doc.components?.schemas?.KeySubmissionBody).toMatchObject({ properties: { apiKey: { writeOnly: true, format: 'password' } } });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/install-sessions',
      '/v1/tenants/{tenantId}/audit',
      '/v1/tenants/{tenantId}/pleo/compromise',
      '/v1/tenants/{tenantId}/pleo/connection',
      '/v1/tenants/{tenantId}/pleo/key',
      '/v1/tenants/{tenantId}/pleo/submissions/{submissionId}',
    ]);
  });

  it('matches the committed docs/openapi.json (regenerate it with npm run openapi)', async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development' }));
    const committed = JSON.parse(readFileSync(join(__dirname, '../../../docs/openapi.json'), 'utf8'));
    expect(JSON.parse(JSON.stringify(doc))).toEqual(committed);
  });
});
