import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '@keyward/config';
import { openApiDocumentOffline } from './openapi-offline';

describe('OpenAPI document', () => {
  it('is built without infrastructure and marks the key write-only and masked', async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }));
    expect(doc.components?.schemas?.KeySubmissionBody).toMatchObject({ properties: { apiKey: { writeOnly: true, format: 'password' } } });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/alerts/deliveries',
      '/v1/alerts/deliveries/{id}/redeliver',
      '/v1/connections',
      '/v1/install-sessions',
      '/v1/install-sessions/current',
      '/v1/tenants/{tenantId}/audit',
      '/v1/tenants/{tenantId}/pleo/compromise',
      '/v1/tenants/{tenantId}/pleo/connection',
      '/v1/tenants/{tenantId}/pleo/connection/check',
      '/v1/tenants/{tenantId}/pleo/connection/checks/{checkId}',
      '/v1/tenants/{tenantId}/pleo/key',
      '/v1/tenants/{tenantId}/pleo/submissions/{submissionId}',
    ]);
  });

  it('describes every new call with a summary and its errors from the problem table', async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }));
    const calls: [string, 'get' | 'post'][] = [
      ['/v1/alerts/deliveries', 'get'],
      ['/v1/alerts/deliveries/{id}/redeliver', 'post'],
      ['/v1/connections', 'get'],
      ['/v1/install-sessions/current', 'get'],
      ['/v1/tenants/{tenantId}/pleo/connection/check', 'post'],
      ['/v1/tenants/{tenantId}/pleo/connection/checks/{checkId}', 'get'],
    ];
    for (const [path, method] of calls) {
      const operation = doc.paths[path][method]!;
      expect(operation.summary).toEqual(expect.any(String));
      const errors = Object.entries(operation.responses).filter(([status]) => Number(status) >= 400);
      expect(errors.length).toBeGreaterThan(0);
      for (const [, response] of errors) expect(JSON.stringify(response)).toContain('#/components/schemas/ErrorBodyDto');
    }
    expect(JSON.stringify(doc.paths['/connect'] ?? null)).toBe('null');
  });

  it('matches the committed docs/openapi.json (regenerate it with npm run openapi)', async () => {
    const doc = await openApiDocumentOffline(loadConfig('intake', { NODE_ENV: 'development' }));
    const committed = JSON.parse(readFileSync(join(__dirname, '../../../docs/openapi.json'), 'utf8'));
    expect(JSON.parse(JSON.stringify(doc))).toEqual(committed);
  });
});
