export * from './env-reader';
export * from './keyward-config';
export * from './config.module';
export * from './published-secrets';
