import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { KeywardLogger } from '@keyward/observability';
import { databaseOfTheBlock, TestDatabase, testConfig, testPrefix } from '@keyward/testing';
import { InstallSessionRepository } from '../install-sessions/install-session.repository';
import { SubmissionRateLimiter } from '../rate-limits/submission-rate-limiter';
import { IntakeHousekeeping } from './intake-housekeeping';

describe("IntakeHousekeeping: intake's clean-up rounds", () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let housekeeping: IntakeHousekeeping;
  const sessions = new InstallSessionRepository();
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);

  const block = databaseOfTheBlock();
  beforeAll(async () => {
    ({ db, dataSource } = block);
    const config = testConfig('intake', { databaseUrl: db.url, prefix: testPrefix() });
    housekeeping = new IntakeHousekeeping(dataSource, sessions, new SubmissionRateLimiter(dataSource, config), KeywardLogger.create('test', 'error'));
  });

  it('prunes install sessions expired over a day ago and finished windows, and keeps the rest', async () => {
    const session = (expiresAt: Date) => ({ tokenHash: randomUUID(), tenantId: 'acme', createdBy: 'token:test', expiresAt, returnUrl: null });
    const [old, recent, live] = [session(hoursAgo(25)), session(hoursAgo(1)), session(new Date(Date.now() + 3600_000))];
    for (const s of [old, recent, live]) await sessions.insert(dataSource.manager, s);
    await dataSource.query(
      `INSERT INTO rate_limit_windows (bucket, window_start, hits) VALUES
         ('submit:tenant:acme', now() - interval '3 hours', 4), ('check:tenant:acme', now() - interval '3 hours', 1),
         ('submit:tenant:acme', now() - interval '30 minutes', 2), ('gateway:other', now() - interval '3 hours', 9)`,
    );

    expect(await housekeeping.round()).toEqual({ installSessions: 1, rateLimitWindows: 2 });

    // An expired session is still told from an unknown one for a day; the live one is untouched.
    expect(await sessions.find(dataSource.manager, old.tokenHash)).toBeUndefined();
    expect(await sessions.find(dataSource.manager, recent.tokenHash)).toMatchObject({ tenantId: 'acme' });
    expect(await sessions.find(dataSource.manager, live.tokenHash)).toMatchObject({ tenantId: 'acme' });
    const windows = await dataSource.query<{ bucket: string }[]>('SELECT bucket FROM rate_limit_windows ORDER BY bucket');
    expect(windows.map((w) => w.bucket)).toEqual(['gateway:other', 'submit:tenant:acme']);
    expect(await housekeeping.round()).toEqual({ installSessions: 0, rateLimitWindows: 0 });
  });
});
