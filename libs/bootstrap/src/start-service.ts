import 'reflect-metadata';
import { Server } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, KeywardConfig, loadConfig, ServiceName } from '@keyward/config';
import { KeywardLogger, NestLoggerAdapter } from '@keyward/observability';
import { attachEventServer, ServiceDefinition, serviceRootModule } from './service-module';

/**
 * Starts one keyward service as its own process: validated configuration (refusing development
 * defaults in production), a clear message and a non-zero exit when Postgres or RabbitMQ is
 * unreachable, health and metrics over HTTP, and a graceful stop on SIGTERM/SIGINT.
 */
export async function startService(name: ServiceName, definition: (config: KeywardConfig) => ServiceDefinition): Promise<void> {
  let config: KeywardConfig;
  try {
    config = loadConfig(name);
  } catch (error) {
    process.stderr.write(`keyward ${name}: ${error instanceof ConfigError ? error.message : String(error)}\n`);
    process.exit(78); // EX_CONFIG
  }
  const def = definition(config);
  const logger = KeywardLogger.create(name, config.logLevel, { bufferBytes: def.logBufferBytes });
  if (config.devDefaultsUsed.length > 0) {
    logger.warn('Running on development defaults (refused when NODE_ENV=production)', { defaults: config.devDefaultsUsed });
  }
  try {
    const app = await NestFactory.create(serviceRootModule(def, config, logger), {
      logger: new NestLoggerAdapter(logger),
      abortOnError: false,
    });
    def.configureApp?.(app);
    await attachEventServer(app, def, config);
    await app.listen(config.port, process.env.HOST ?? '0.0.0.0');
    logger.info(`keyward ${name} started`, { port: config.port, consumes: def.consumes ?? null, nodeEnv: config.nodeEnv });
    stopOnSignals(app, logger);
  } catch (error) {
    logger.fatal(`keyward ${name} could not start: ${(error as Error)?.message ?? error}`, { err: error });
    logger.flush();
    setTimeout(() => process.exit(1), 100);
  }
}

const SHUTDOWN_DEADLINE_MS = 25_000;
/** Requests in hand (a `Prefer: wait` may take its full wait) get this long before their connections are cut. */
const HTTP_DRAIN_MS = 12_000;

/**
 * Stops accepting connections, lets requests in hand finish, and closes keep-alive connections
 * as soon as they are idle (a client that keeps one open would otherwise hold the shutdown up).
 */
async function closeHttpServer(server: Server, drainMs: number): Promise<void> {
  if (!server?.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const idle = setInterval(() => server.closeIdleConnections(), 250);
  const cut = setTimeout(() => server.closeAllConnections(), drainMs);
  try {
    await closed;
  } finally {
    clearInterval(idle);
    clearTimeout(cut);
  }
}

function countBy(items: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

/**
 * SIGTERM/SIGINT: report not ready, stop consuming, finish what is in hand, close connections,
 * exit 0 — within the deadline a Kubernetes pod gets (terminationGracePeriodSeconds 30).
 */
function stopOnSignals(app: INestApplication, logger: KeywardLogger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('Stopping: no new work, finishing what is in hand', { signal });
    let step = 'closing the HTTP server';
    const deadline = setTimeout(() => {
      logger.error('Shutdown took longer than the deadline; exiting now (unfinished events are redelivered)', {
        deadlineMs: SHUTDOWN_DEADLINE_MS,
        step,
        pending: countBy(process.getActiveResourcesInfo()),
      });
      logger.flush();
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    try {
      await closeHttpServer(app.getHttpServer() as Server, HTTP_DRAIN_MS);
      step = 'stopping consumers, relays and connections';
      logger.info('Stopping: HTTP server closed');
      await app.close();
      logger.info('Stopped');
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.error('Shutdown failed', { err: error });
      logger.flush();
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
