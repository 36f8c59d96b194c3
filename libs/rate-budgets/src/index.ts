export * from './shared-rate-budget';
