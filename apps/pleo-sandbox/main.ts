import { ConfigError, KeywardConfig, loadConfig } from '@keyward/config';
import { KeywardLogger } from '@keyward/observability';
import { startPleoSandbox } from './start-pleo-sandbox';

/**
 * The Pleo sandbox as its own process (development and demos). It needs no database or broker,
 * so it does not use startService; only PORT and LOG_LEVEL of the configuration matter.
 */
async function main(): Promise<void> {
  let port: number;
  let logLevel: KeywardConfig['logLevel'];
  let ratePerMinute: number;
  try {
    ({
      port,
      logLevel,
      sandbox: { ratePerMinute },
    } = loadConfig('pleo-sandbox'));
  } catch (error) {
    process.stderr.write(`keyward pleo-sandbox: ${error instanceof ConfigError ? error.message : String(error)}\n`);
    process.exit(78); // EX_CONFIG
  }
  const logger = KeywardLogger.create('pleo-sandbox', logLevel);
  if (process.env.NODE_ENV === 'production') {
    logger.warn('The Pleo sandbox is a test double with an unauthenticated control API; do not expose it');
  }
  const sandbox = await startPleoSandbox({ port, host: process.env.HOST ?? '127.0.0.1', logger, ratePerMinute });
  logger.info('Pleo sandbox started', { url: sandbox.url, controlApi: `${sandbox.url}/_sandbox`, ratePerMinute });
  const stop = (signal: string) => {
    logger.info('Pleo sandbox stopping', { signal });
    void sandbox.close().finally(() => {
      logger.flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

void main();
