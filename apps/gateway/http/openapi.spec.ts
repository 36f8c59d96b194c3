import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { refusalStatus } from '@keyward/contracts';
import { GATEWAY_REFUSALS, gatewayOpenApiDocument } from './openapi';

describe('gateway OpenAPI document', () => {
  it('groups codes that share one HTTP status in the problem table, one group per status', () => {
    const statuses = GATEWAY_REFUSALS.map(({ codes }) => {
      expect(new Set(codes.map(refusalStatus)).size).toBe(1);
      return refusalStatus(codes[0]);
    });
    expect(new Set(statuses).size).toBe(statuses.length);
    const document = gatewayOpenApiDocument() as { paths: Record<string, { get: { responses: Record<string, unknown> } }> };
    const responses = Object.values(document.paths)[0].get.responses;
    expect(Object.keys(responses).sort()).toEqual(['default', ...statuses.map(String)].sort());
  });

  it('matches the committed docs/openapi-gateway.json (regenerate it with npm run openapi)', () => {
    const committed = JSON.parse(readFileSync(join(__dirname, '../../../docs/openapi-gateway.json'), 'utf8'));
    expect(JSON.parse(JSON.stringify(gatewayOpenApiDocument()))).toEqual(committed);
  });
});
