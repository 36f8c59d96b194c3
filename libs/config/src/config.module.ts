import { DynamicModule, Global, Module } from '@nestjs/common';
import { KeywardConfig } from './keyward-config';

export const KEYWARD_CONFIG = Symbol('KEYWARD_CONFIG');

/** Makes the one validated configuration object injectable as `@Inject(KEYWARD_CONFIG)`. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: KeywardConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: KEYWARD_CONFIG, useValue: config }], exports: [KEYWARD_CONFIG] };
  }
}
