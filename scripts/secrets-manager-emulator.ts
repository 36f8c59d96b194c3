import { SecretsManagerEmulator } from '../libs/testing/src/secrets-manager-emulator';

/**
 * The test suite's AWS Secrets Manager emulator as a process, for `docker compose up` where
 * LocalStack cannot be pulled (deploy/README.md). Development only: secrets live in memory and
 * are gone when it stops; nothing is authenticated.
 */
async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 4566);
  const host = process.env.HOST ?? '127.0.0.1';
  const emulator = await SecretsManagerEmulator.start({ host, port });
  process.stdout.write(`${JSON.stringify({ level: 'info', service: 'secrets-manager-emulator', msg: 'Secrets Manager emulator listening', host, port })}\n`);
  const stop = (): void => void emulator.stop().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`secrets-manager-emulator: ${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
