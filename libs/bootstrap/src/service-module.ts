import { DynamicModule, INestApplication, Module, Type } from '@nestjs/common';
import { ConfigModule, KeywardConfig } from '@keyward/config';
import { Subscriber } from '@keyward/contracts';
import { AmqpConnection, AmqpEventServer, EventErrorPassthroughFilter, MessagingModule, ReconcilerModule, RetryPolicy, Sweep } from '@keyward/messaging';
import { KeywardLogger, Metrics, ObservabilityModule } from '@keyward/observability';
import { PersistenceModule } from '@keyward/persistence';
import { DataSource } from 'typeorm';

export interface ServiceDefinition {
  /** The service's own module: its handlers, controllers and services. */
  module: Type<unknown> | DynamicModule;
  /** The queue whose events this service handles, if it is a worker. */
  consumes?: Subscriber;
  retry?: RetryPolicy;
  /** Handle deliveries that arrive together in one transaction (handlers whose work is all in Postgres). */
  batch?: { consumer: string; maxSize?: number; maxConcurrent?: number };
  /** The reconciler's sweeps for stuck work this service owns (ADR 0014). */
  reconcile?: Sweep[];
  /**
   * HTTP set-up that needs the application object (body parsing, API docs). Runs after the app
   * is created and before it initialises; tests that build the app themselves call it too.
   */
  configureApp?: (app: INestApplication) => void;
  /** Write log lines in blocks of this many bytes instead of one by one: a service that logs every call (ADR 0028). */
  logBufferBytes?: number;
}

@Module({})
class KeywardServiceRoot {}

/** Config, logging, metrics, health, Postgres and RabbitMQ around a service's own module. */
export function serviceRootModule(definition: ServiceDefinition, config: KeywardConfig, logger: KeywardLogger): DynamicModule {
  return {
    module: KeywardServiceRoot,
    imports: [
      ConfigModule.forRoot(config),
      ObservabilityModule.forRoot(logger, config.service),
      PersistenceModule.forRoot(),
      MessagingModule.forRoot(),
      ...(definition.reconcile?.length ? [ReconcilerModule.forRoot(definition.reconcile)] : []),
      definition.module,
    ],
  };
}

/** Connects the event transport of a worker to an app built from `serviceRootModule`. */
export async function attachEventServer(app: INestApplication, definition: ServiceDefinition, config: KeywardConfig): Promise<void> {
  if (!definition.consumes) return;
  // Registered before connecting: Nest wires the event handlers' filters at connect time.
  app.useGlobalFilters(new EventErrorPassthroughFilter(app.getHttpAdapter()));
  app.connectMicroservice(
    {
      strategy: new AmqpEventServer({
        connection: app.get(AmqpConnection),
        dataSource: app.get(DataSource),
        subscriber: definition.consumes,
        prefetch: config.amqp.prefetch,
        logger: app.get(KeywardLogger).child({ component: 'event-server' }),
        metrics: app.get(Metrics),
        retry: definition.retry,
        batch: definition.batch && { ...definition.batch, dataSource: app.get(DataSource) },
        // Handlers name their inbox consumer after the queue they consume.
        inboxRetention: { consumer: definition.batch?.consumer ?? definition.consumes, dataSource: app.get(DataSource), days: config.amqp.inboxRetentionDays },
      }),
    },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
}
