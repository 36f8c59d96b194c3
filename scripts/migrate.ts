import { ConfigError, loadConfig } from '@keyward/config';
import { DatabaseUnreachableError, describeDatabaseUrl, migrate } from '@keyward/persistence';

/** `npm run migrate`: creates the database if needed and applies pending migrations. */
async function main(): Promise<void> {
  const config = loadConfig('tool');
  const applied = await migrate(config.database.url);
  const where = describeDatabaseUrl(config.database.url);
  process.stdout.write(applied.length ? `Applied ${applied.length} migration(s) to ${where}: ${applied.join(', ')}\n` : `Database ${where} is up to date.\n`);
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof DatabaseUnreachableError;
  process.stderr.write(`keyward migrate: ${known ? (error as Error).message : String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
