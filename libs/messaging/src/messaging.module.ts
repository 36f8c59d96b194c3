import { BeforeApplicationShutdown, DynamicModule, Global, Inject, Injectable, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig, poolApplicationName } from '@keyward/config';
import { HealthChecks, KeywardLogger, Metrics } from '@keyward/observability';
import { AmqpConnection } from './amqp-connection';
import { OutboxRelay } from './outbox-relay';

@Injectable()
class MessagingLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    @Inject(AmqpConnection) private readonly connection: AmqpConnection,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    @Inject(HealthChecks) private readonly health: HealthChecks,
    @Inject(DataSource) private readonly dataSource: DataSource,
  ) {}

  onApplicationBootstrap(): void {
    this.health.register({
      name: 'postgres',
      check: async () => {
        await this.dataSource.query('SELECT 1');
      },
    });
    this.health.register({
      name: 'rabbitmq',
      check: async () => {
        if (!this.connection.connected) throw new Error('not connected');
        const { topology } = this.connection;
        // Ready either way, but an operator sees that events sit in unreplicated classic queues.
        if (topology.queueType === 'classic') return { queueType: 'classic', classicQueues: topology.classicQueues.slice(0, 20) };
        return undefined;
      },
    });
    this.relay.start();
  }

  beforeApplicationShutdown(): void {
    this.health.markDraining();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.connection.close();
  }
}

/**
 * The broker connection (topology declared on connect) and the outbox relay, which runs inside
 * every service that writes events (see docs/adr/0003-outbox-relay-in-every-service.md).
 */
@Global()
@Module({})
export class MessagingModule {
  static forRoot(): DynamicModule {
    return {
      module: MessagingModule,
      providers: [
        {
          provide: AmqpConnection,
          inject: [KEYWARD_CONFIG, KeywardLogger, Metrics],
          useFactory: async (config: KeywardConfig, logger: KeywardLogger, metrics: Metrics) => {
            const fallbacks = metrics.counter('keyward_broker_classic_queue_fallbacks_total', 'Connections that found classic queues where quorum queues were asked for (not replicated)');
            const connection = new AmqpConnection({
              url: config.amqp.url,
              prefix: config.amqp.prefix,
              logger,
              onClassicFallback: () => fallbacks.inc(),
              name: `keyward-${config.service}${config.amqp.prefix === 'keyward' ? '' : `@${config.amqp.prefix}`}`,
            });
            await connection.start();
            return connection;
          },
        },
        {
          provide: OutboxRelay,
          inject: [DataSource, AmqpConnection, KEYWARD_CONFIG, KeywardLogger, Metrics],
          useFactory: (dataSource: DataSource, connection: AmqpConnection, config: KeywardConfig, logger: KeywardLogger, metrics: Metrics) =>
            // What the service's own commits are named by (PersistenceModule's pool): the relay wakes for those.
            new OutboxRelay(dataSource, connection, config.database.url, logger.child({ component: 'outbox-relay' }), metrics, { application: poolApplicationName(config.service) }),
        },
        MessagingLifecycle,
      ],
      exports: [AmqpConnection, OutboxRelay],
    };
  }
}
