export * from './start-pleo-sandbox';
export * from './sandbox-state';
