export * from './events';
export * from './event-factory';
export * from './subscriptions';
export * from './problems';
export * from './refusal';
export * from './http-shapes';
export * from './service-identity';
export * from './company-binding';
