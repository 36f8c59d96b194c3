import { Client } from 'pg';

/** Drops the template and every database this run created. */
export default async function globalTeardown(): Promise<void> {
  const runId = process.env.KEYWARD_TEST_RUN_ID;
  const adminUrl = process.env.KEYWARD_TEST_ADMIN_DATABASE_URL;
  if (runId && adminUrl) {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    const rows = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`keyward_%${runId}%`]);
    for (const { datname } of rows.rows as { datname: string }[]) {
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
    await admin.end();
  }
  await (globalThis as { __keywardStop?: () => Promise<void> }).__keywardStop?.();
}
