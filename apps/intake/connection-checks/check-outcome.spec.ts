import { problem } from '@keyward/contracts';
import { checkView } from './check-outcome';

const requestedAt = new Date('2026-11-30T10:00:00Z');
const checkedAt = new Date('2026-11-30T10:00:01Z');

describe('connection check view', () => {
  it('is pending until the validator answered', () => {
    expect(checkView('c1', requestedAt, null)).toEqual({ checkId: 'c1', status: 'pending', requestedAt: '2026-11-30T10:00:00.000Z' });
  });

  it.each([
    ['valid', null],
    ['invalid', problem('reconnect_required')],
    ['insufficient_scopes', problem('insufficient_scopes')],
    ['unreachable', problem('pleo_unreachable')],
  ])('answers %s with what it means for the customer', (outcome, error) => {
    expect(checkView('c1', requestedAt, { occurredAt: checkedAt, details: { outcome } })).toMatchObject({ status: 'completed', outcome, checkedAt: checkedAt.toISOString(), error });
  });

  it('names the missing scopes, and reads an unknown outcome as unreachable rather than as fine', () => {
    expect(checkView('c1', requestedAt, { occurredAt: checkedAt, details: { outcome: 'insufficient_scopes', missingScopes: ['users:read'] } }).missingScopes).toEqual(['users:read']);
    expect(checkView('c1', requestedAt, { occurredAt: checkedAt, details: { outcome: 'something_new' } }).outcome).toBe('unreachable');
  });
});
