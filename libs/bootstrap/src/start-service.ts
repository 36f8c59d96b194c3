import 'reflect-metadata';
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
  const logger = KeywardLogger.create(name, config.logLevel);
  if (config.devDefaultsUsed.length > 0) {
    logger.warn('Running on development defaults (refused when NODE_ENV=production)', { defaults: config.devDefaultsUsed });
  }
  const def = definition(config);
  try {
    const app = await NestFactory.create(serviceRootModule(def, config, logger), {
      logger: new NestLoggerAdapter(logger),
      abortOnError: false,
    });
    app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
    def.configureApp?.(app);
    await attachEventServer(app, def, config);
    await app.listen(config.port, process.env.HOST ?? '0.0.0.0');
    logger.info(`keyward ${name} started`, { port: config.port, consumes: def.consumes ?? null, nodeEnv: config.nodeEnv });
  } catch (error) {
    logger.fatal(`keyward ${name} could not start: ${(error as Error)?.message ?? error}`, { err: error });
    logger.flush();
    setTimeout(() => process.exit(1), 100);
  }
}
