import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { HealthChecks, KeywardLogger, Metrics } from '@keyward/observability';
import { AwsSecretStore } from './aws-secret-store';
import { LocalSecretStore } from './local-secret-store';
import { resolveMasterKeyring } from './master-key';
import { CoalescedRevocationCheck, QueryRevocationCheck } from './revocation-check';
import { CacheInvalidatingSecretStore, SecretReader } from './secret-reader';
import { SECRET_STORE, SecretStore } from './secret-store';
import { SecretsQuotaMetrics, SharedSecretsBudget } from './secrets-manager-quotas';

/** The backend itself, before the cache-invalidating wrapper; internal to this module. */
const SECRET_BACKEND = Symbol('SECRET_BACKEND');

/**
 * Builds the backend `config.secrets.backend` names. The aws store spends Secrets Manager's
 * quotas through the budget every replica shares in Postgres (`KEYWARD_SECRETS_WRITE_RATE`).
 */
export function createSecretStore(config: KeywardConfig, dataSource: DataSource, logger: KeywardLogger, metrics?: Metrics): SecretStore {
  const naming = { namePrefix: config.secrets.namePrefix, envName: config.secrets.envName };
  if (config.secrets.backend === 'aws') {
    const quotaMetrics = metrics ? new SecretsQuotaMetrics(metrics) : undefined;
    return new AwsSecretStore({
      region: config.secrets.awsRegion,
      endpoint: config.secrets.awsEndpoint,
      kmsKeyId: config.secrets.kmsKeyId,
      maxAttempts: config.secrets.maxAttempts,
      naming,
      budget: new SharedSecretsBudget(dataSource, { region: config.secrets.awsRegion, ratePerSecond: config.secrets.writeRatePerSecond, metrics: quotaMetrics }),
      metrics: quotaMetrics,
    });
  }
  return new LocalSecretStore(dataSource, resolveMasterKeyring(config, logger), naming);
}

/** Closes the AWS client's sockets on shutdown, so a stopping service does not hang on keep-alive. */
@Injectable()
class SecretStoreCloser implements OnApplicationShutdown {
  constructor(@Inject(SECRET_BACKEND) private readonly backend: SecretStore) {}

  onApplicationShutdown(): void {
    if (this.backend instanceof AwsSecretStore) this.backend.destroy();
  }
}

/**
 * Global: `@Inject(SECRET_STORE) store: SecretStore` for label moves and writes, `SecretReader`
 * to read a key for use. Needs KEYWARD_CONFIG, DataSource (PersistenceModule) and the
 * observability providers; registers the `secrets` readiness check.
 */
@Global()
@Module({})
export class SecretsModule {
  /** `coalesceRevocationChecks`: one revocation query answers every read waiting for it (the gateway's hot path). */
  static forRoot(options: { coalesceRevocationChecks?: boolean } = {}): DynamicModule {
    return {
      module: SecretsModule,
      providers: [
        {
          provide: SECRET_BACKEND,
          inject: [KEYWARD_CONFIG, DataSource, KeywardLogger, Metrics],
          useFactory: (config: KeywardConfig, dataSource: DataSource, logger: KeywardLogger, metrics: Metrics) => {
            const store = createSecretStore(config, dataSource, logger, metrics);
            logger.info('Secret store ready', { backend: store.backend, ...(store.backend === 'aws' ? { writesPerSecond: config.secrets.writeRatePerSecond } : {}) });
            return store;
          },
        },
        {
          provide: SecretReader,
          inject: [SECRET_BACKEND, KEYWARD_CONFIG, DataSource, KeywardLogger],
          useFactory: (backend: SecretStore, config: KeywardConfig, dataSource: DataSource, logger: KeywardLogger) =>
            new SecretReader(
              backend,
              dataSource,
              logger,
              config.secrets.cacheTtlMs,
              Date.now,
              options.coalesceRevocationChecks ? new CoalescedRevocationCheck(dataSource) : new QueryRevocationCheck(dataSource),
              config.secrets.cacheMaxKeys,
            ),
        },
        {
          provide: SECRET_STORE,
          inject: [SECRET_BACKEND, SecretReader, HealthChecks],
          useFactory: (backend: SecretStore, reader: SecretReader, health: HealthChecks) => {
            health.register({ name: 'secrets', check: () => backend.ping() });
            return new CacheInvalidatingSecretStore(backend, () => reader);
          },
        },
        SecretStoreCloser,
      ],
      exports: [SECRET_STORE, SecretReader],
    };
  }
}
