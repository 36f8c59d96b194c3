export * from './pleo-results';
export * from './subject-urn';
export * from './retry-after';
export * from './pleo-client';
export * from './pleo.module';
