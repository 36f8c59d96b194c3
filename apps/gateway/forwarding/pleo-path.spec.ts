import { endpointTemplate, gatewayTarget } from './pleo-path';

describe('gatewayTarget', () => {
  it.each([
    ['/v1/tenants/acme/pleo/api/v1/employees', { tenantId: 'acme', path: '/v1/employees', query: '' }],
    ['/v1/tenants/acme/pleo/api/v1/employees?pageSize=10&after=a%20b', { tenantId: 'acme', path: '/v1/employees', query: '?pageSize=10&after=a%20b' }],
    ['/v1/tenants/acme/pleo/api//v1///employees/', { tenantId: 'acme', path: '/v1/employees', query: '' }],
    ['/v1/tenants/acme/pleo/api/v1/files/a%20b.csv', { tenantId: 'acme', path: '/v1/files/a%20b.csv', query: '' }],
    ['/v1/tenants/acme/pleo/api/v1/things/urn:pleo:company:1', { tenantId: 'acme', path: '/v1/things/urn:pleo:company:1', query: '' }],
    ['/v1/tenants/acme/pleo/api/v1/%7Euser', { tenantId: 'acme', path: '/v1/~user', query: '' }],
  ])('%s → forwarded as one canonical path', (url, expected) => {
    expect(gatewayTarget(url)).toEqual({ kind: 'pleo', ...expected });
  });

  it.each([
    '/v1/tenants/acme/pleo/api/v1/../x',
    '/v1/tenants/acme/pleo/api/v1/./x',
    '/v1/tenants/acme/pleo/api/%2e%2e/x',
    '/v1/tenants/acme/pleo/api/.%2E/x',
    '/v1/tenants/acme/pleo/api/v1%2f..%2fx',
    '/v1/tenants/acme/pleo/api/v1%5C..',
    '/v1/tenants/acme/pleo/api/v1/%00',
    '/v1/tenants/acme/pleo/api/%zz',
    '/v1/tenants/acme/pleo/api',
    '/v1/tenants/acme/pleo/api/',
  ])('%s → refused', (url) => {
    expect(gatewayTarget(url)).toEqual({ kind: 'refused', code: 'invalid_pleo_path' });
  });

  it('refuses a tenant id that is not one', () => {
    expect(gatewayTarget('/v1/tenants/a%20b/pleo/api/v1/x')).toMatchObject({ code: 'invalid_tenant_id' });
    expect(gatewayTarget('/v1/tenants//pleo/api/v1/x')).toMatchObject({ code: 'invalid_tenant_id' });
  });

  it('leaves every other route to Nest', () => {
    expect(gatewayTarget('/health/ready')).toEqual({ kind: 'not-gateway' });
    expect(gatewayTarget('/v1/tenants/acme/pleo/apix/v1')).toEqual({ kind: 'not-gateway' });
  });
});

describe('endpointTemplate', () => {
  it.each([
    ['/v1/employees', '/v1/employees'],
    ['/v1/export-jobs/0b8a1f0c-3d56-4c53-9b8e-1f4a6e0c2d11/file', '/v1/export-jobs/{id}/file'],
    ['/v1/expenses/123456', '/v1/expenses/{id}'],
    ['/v1/receipts/AbC123dEf456GhI789', '/v1/receipts/{id}'],
    ['/v1/accounting-entries', '/v1/accounting-entries'],
  ])('%s → %s', (path, template) => {
    expect(endpointTemplate(path)).toBe(template);
  });
});
