import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROBLEM_CODES } from '@keyward/contracts';
import { GATEWAY_REFUSALS, gatewayOpenApiDocument } from './openapi';

describe('gateway OpenAPI document', () => {
  it('names only codes of the problem table', () => {
    for (const { codes } of Object.values(GATEWAY_REFUSALS)) for (const code of codes) expect(PROBLEM_CODES).toContain(code);
  });

  it('matches the committed docs/openapi-gateway.json (regenerate it with npm run openapi)', () => {
    const committed = JSON.parse(readFileSync(join(__dirname, '../../../docs/openapi-gateway.json'), 'utf8'));
    expect(JSON.parse(JSON.stringify(gatewayOpenApiDocument()))).toEqual(committed);
  });
});
