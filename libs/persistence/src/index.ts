export * from './entities';
export * from './data-source';
export * from './audit-log';
export * from './persistence.module';
export * from './prepared-query';
export * from './locks';
export * from './owner-records';
