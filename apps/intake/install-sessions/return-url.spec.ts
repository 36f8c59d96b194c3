import { connectUrl, isAllowedReturnUrl } from './return-url';

describe('install session return URLs', () => {
  const prefixes = ['https://app.example.com/', 'https://partner.example.org/pleo/'];

  it.each<[string, boolean]>([
    ['https://app.example.com/settings/pleo?done=1', true],
    ['https://partner.example.org/pleo/back', true],
    ['https://app.example.com.evil.test/', false],
    ['https://partner.example.org/other', false],
    ['https://partner.example.org/pleo/../other', false],
    ['http://app.example.com/', false],
    ['https://user:pw@app.example.com/', false],
    ['javascript:alert(1)', false],
    ['/relative', false],
    [`https://app.example.com/${'a'.repeat(2100)}`, false],
  ])('%s → %s', (url, allowed) => {
    expect(isAllowedReturnUrl(url, prefixes)).toBe(allowed);
  });

  it('accepts nothing when no prefix is configured', () => {
    expect(isAllowedReturnUrl('https://app.example.com/', [])).toBe(false);
  });

  it('puts the token in the fragment, never the query', () => {
    const url = new URL(connectUrl('https://keyward.example.com', 'tok_en-1'));
    expect(url.pathname).toBe('/connect');
    expect(url.search).toBe('');
    expect(url.hash).toBe('#session=tok_en-1');
  });
});
