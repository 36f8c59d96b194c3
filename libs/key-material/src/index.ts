export * from './api-key';
export * from './submitted-key';
