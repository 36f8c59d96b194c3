import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KEYWARD_CONFIG, KeywardConfig, poolApplicationName } from '@keyward/config';
import { createDataSource, DatabaseUnreachableError, describeDatabaseUrl } from './data-source';

@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

/** Provides the initialised TypeORM `DataSource` for the configured database. */
@Global()
@Module({})
export class PersistenceModule {
  static forRoot(): DynamicModule {
    return {
      module: PersistenceModule,
      providers: [
        {
          provide: DataSource,
          inject: [KEYWARD_CONFIG],
          useFactory: async (config: KeywardConfig) => {
            const dataSource = createDataSource({
              url: config.database.url,
              poolSize: config.database.poolSize,
              applicationName: poolApplicationName(config.service),
            });
            try {
              return await dataSource.initialize();
            } catch (error) {
              throw new DatabaseUnreachableError(describeDatabaseUrl(config.database.url), error);
            }
          },
        },
        DataSourceCloser,
      ],
      exports: [DataSource],
    };
  }
}
