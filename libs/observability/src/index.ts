export * from './redaction';
export * from './correlation';
export * from './logger';
export * from './metrics';
export * from './health';
export * from './observability.module';
export * from './periodic-task';
