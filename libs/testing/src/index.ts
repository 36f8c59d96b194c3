export * from './test-env';
export * from './event-tap';
export * from './test-infrastructure';
export * from './secrets-manager-emulator';
export * from './test-service';
export * from './owner-records';
export * from './private-services';
