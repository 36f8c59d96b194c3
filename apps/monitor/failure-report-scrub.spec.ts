import { scrubEndpoint, scrubSource } from './failure-report-scrub';

describe('what of an auth.failed report is kept', () => {
  it.each([
    ['/v1/expenses', '/v1/expenses'],
    ['/v1/expenses?api_key=pleo_live_abc&page=2', '/v1/expenses'],
    ['/v1/expenses#token=abc', '/v1/expenses'],
    ['https://external.pleo.io/v1/expenses?key=abc', 'https://external.pleo.io/v1/expenses'],
    ['https://pleo_live_abc:@external.pleo.io/v1/export-jobs', 'https://external.pleo.io/v1/export-jobs'],
    ['https://user:secret@external.pleo.io', 'https://external.pleo.io'],
    ['/v1/users;jsessionid=abc', '/v1/users'],
    ['?api_key=abc', null],
    [undefined, null],
  ])('endpoint %j is kept as %j', (endpoint, kept) => {
    expect(scrubEndpoint(endpoint)).toBe(kept);
  });

  it.each([
    ['expense-sync', 'expense-sync'],
    ['expense-sync key=pleo_live_abc', 'expense-sync'],
    ['billing:pleo_live_abc', 'billing'],
    ['   ', 'unnamed'],
    ['x'.repeat(100), 'x'.repeat(64)],
  ])('source %j is kept as %j', (source, kept) => {
    expect(scrubSource(source)).toBe(kept);
  });
});
