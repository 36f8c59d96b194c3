import { credentialParametersIn, isCredentialParameter } from './key-in-query';

describe('credentials in a query string', () => {
  it.each(['apiKey', 'api_key', 'API-KEY', 'key', 'token', 'access_token', 'secret', 'client_secret', 'password', 'authorization'])('recognises %s', (name) => {
    expect(isCredentialParameter(name)).toBe(true);
  });

  it.each(['since', 'limit', 'keyboard', 'monkey', 'tenantId'])('leaves %s alone', (name) => {
    expect(isCredentialParameter(name)).toBe(false);
  });

  it('finds them in a raw URL, decoded names included', () => {
    expect(credentialParametersIn('/v1/x?since=2025-01-01T00:00:00Z&api%5Fkey=abc')).toEqual(['api_key']);
    expect(credentialParametersIn('/v1/x')).toEqual([]);
  });
});
