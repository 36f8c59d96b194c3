import { QueryFailedError } from 'typeorm';
import { SecretStoreError } from '@keyward/secrets';
import { isDependencyUnavailable } from './dependency-errors';
import { PermanentEventError } from './event-errors';

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });

describe('isDependencyUnavailable', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['Postgres shutting down (57P01)', pgError('57P01')],
    ['a lost connection (08006)', pgError('08006')],
    ['too many connections (53300)', pgError('53300')],
    ['a deadlock (40P01)', pgError('40P01')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['TypeORM wrapping a driver error', new QueryFailedError('SELECT 1', [], pgError('08001'))],
    ['a transient secret store error', new SecretStoreError('throttled', 'Secrets Manager throttled the call', true)],
  ])('says yes for %s', (_what, error) => {
    expect(isDependencyUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', pgError('23505')],
    ['a schema error', new Error('Event key.submitted does not match its schema')],
    ['a permanent event error', new PermanentEventError('no such submission')],
    ['a non-transient secret store error', new SecretStoreError('crypto_failure', 'does not decrypt')],
    ['nothing', undefined],
  ])('says no for %s', (_what, error) => {
    expect(isDependencyUnavailable(error)).toBe(false);
  });
});
