import { boundCompany, fitsBinding } from './company-binding';

describe('the company binding', () => {
  it.each([
    ['no connection yet', undefined, null],
    ['active, bound to c1', { status: 'active', companyId: 'c1' }, 'c1'],
    ['disabled (compromised) keeps its binding', { status: 'disabled', companyId: 'c1' }, 'c1'],
    ['uninstalled releases it', { status: 'uninstalled', companyId: 'c1' }, null],
    ['a connection never activated', { status: 'not_connected', companyId: null }, null],
  ])('%s', (_, connection, expected) => {
    expect(boundCompany(connection)).toBe(expected);
  });

  it.each([
    [null, 'c2', true],
    ['c1', 'c1', true],
    ['c1', 'c2', false],
  ])('bound to %s, a key of %s fits: %s', (bound, companyId, fits) => {
    expect(fitsBinding(bound, companyId)).toBe(fits);
  });
});
