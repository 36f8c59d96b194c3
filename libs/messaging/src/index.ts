export * from './topology';
export * from './amqp-connection';
export * from './outbox';
export * from './inbox';
export * from './outbox-relay';
export * from './event-errors';
export * from './event-server';
export * from './messaging.module';
