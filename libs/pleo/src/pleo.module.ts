import { DynamicModule, Global, Module } from '@nestjs/common';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { KeywardLogger, Metrics } from '@keyward/observability';
import { BreakerSettings, PleoClient } from './pleo-client';

export interface PleoModuleOptions {
  /** Overrides of the circuit breaker's defaults (tests use short reset times). */
  breaker?: Partial<BreakerSettings>;
}

/** Provides the one `PleoClient` of the process, configured from `config.pleo`. */
@Global()
@Module({})
export class PleoModule {
  static forRoot(options: PleoModuleOptions = {}): DynamicModule {
    return {
      module: PleoModule,
      providers: [
        {
          provide: PleoClient,
          inject: [KEYWARD_CONFIG, Metrics, KeywardLogger],
          useFactory: (config: KeywardConfig, metrics: Metrics, logger: KeywardLogger) =>
            new PleoClient({
              baseUrl: config.pleo.baseUrl,
              timeoutMs: config.pleo.timeoutMs,
              connectTimeoutMs: config.pleo.connectTimeoutMs,
              allowOrganizationKeys: config.pleo.allowOrganizationKeys,
              breaker: {
                resetTimeoutMs: config.pleo.breakerResetMs,
                errorThresholdPercentage: config.pleo.breakerErrorPercent,
                ...options.breaker,
              },
              metrics,
              logger: logger.child({ component: 'pleo-client' }),
            }),
        },
      ],
      exports: [PleoClient],
    };
  }
}
