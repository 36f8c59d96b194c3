import { IntrospectionResult } from '@keyward/pleo';
import { judgeRevalidation, judgeSubmission } from './verdict';

const required = ['accounts:read', 'export-jobs:write'];
const valid = (over: Partial<Extract<IntrospectionResult, { outcome: 'valid' }>> = {}): IntrospectionResult => ({
  outcome: 'valid',
  authMethod: 'API_KEY',
  companyId: 'c-1',
  subjectType: 'company',
  subjectId: 'c-1',
  scopes: ['accounts:read', 'export-jobs:write', 'users:read'],
  clientId: null,
  applicationName: null,
  ...over,
});

describe('judgeSubmission', () => {
  const unbound = { requiredScopes: required, boundCompanyId: null };

  it('validates a company key with every required scope', () => {
    expect(judgeSubmission(valid(), unbound)).toMatchObject({ kind: 'validated', companyId: 'c-1', subjectType: 'company' });
  });

  it('names the missing scopes', () => {
    expect(judgeSubmission(valid({ scopes: ['accounts:read'] }), unbound)).toMatchObject({ kind: 'rejected', reason: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });
  });

  it('checks the bound company before the scopes', () => {
    expect(judgeSubmission(valid({ scopes: [] }), { requiredScopes: required, boundCompanyId: 'c-2' })).toMatchObject({ reason: 'company_mismatch' });
    expect(judgeSubmission(valid(), { requiredScopes: required, boundCompanyId: 'c-1' })).toMatchObject({ kind: 'validated' });
  });

  it.each<[IntrospectionResult, string]>([
    [{ outcome: 'invalid_key', status: 401 }, 'invalid_key'],
    [{ outcome: 'forbidden', status: 403 }, 'insufficient_scopes'],
    [{ outcome: 'unsupported_subject', subjectType: 'organization', subjectId: 'o-1', scopes: [] }, 'unsupported_subject'],
  ])('rejects %o as %s', (result, reason) => {
    expect(judgeSubmission(result, unbound)).toMatchObject({ kind: 'rejected', reason });
  });

  it('rejects a credential that is not an API key', () => {
    expect(judgeSubmission(valid({ authMethod: 'OAUTH2' }), unbound)).toMatchObject({ kind: 'rejected', reason: 'invalid_key' });
  });

  it.each(['timeout', 'server_error', 'rate_limited', 'circuit_open', 'network'] as const)('never rejects when Pleo is unreachable (%s)', (reason) => {
    expect(judgeSubmission({ outcome: 'unreachable', reason }, unbound).kind).toBe('retry');
  });

  it('retries an answer it cannot read', () => {
    expect(judgeSubmission({ outcome: 'unexpected_response', status: 200, detail: 'x' }, unbound).kind).toBe('retry');
  });
});

describe('judgeRevalidation', () => {
  const context = { requiredScopes: required, boundCompanyId: 'c-1' };
  it('maps every Pleo answer to an outcome', () => {
    expect(judgeRevalidation(valid(), context)).toMatchObject({ outcome: 'valid' });
    expect(judgeRevalidation(valid({ scopes: ['accounts:read'] }), context)).toMatchObject({ outcome: 'insufficient_scopes', missingScopes: ['export-jobs:write'] });
    expect(judgeRevalidation({ outcome: 'invalid_key', status: 401 }, context)).toMatchObject({ outcome: 'invalid' });
    expect(judgeRevalidation({ outcome: 'forbidden', status: 403 }, context)).toMatchObject({ outcome: 'insufficient_scopes' });
    expect(judgeRevalidation({ outcome: 'unreachable', reason: 'timeout' }, context)).toMatchObject({ outcome: 'unreachable' });
    expect(judgeRevalidation({ outcome: 'unreachable', reason: 'circuit_open' }, context)).toMatchObject({ outcome: 'unreachable' });
    expect(judgeRevalidation({ outcome: 'unreachable', reason: 'rate_limited', status: 429, retryAfterMs: 60_000 }, context)).toMatchObject({ outcome: 'rate_limited' });
    expect(judgeRevalidation(valid({ companyId: 'c-9' }), context)).toMatchObject({ outcome: 'invalid' });
  });
});
