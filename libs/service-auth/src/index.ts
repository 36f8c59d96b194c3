export * from './bearer';
export * from './service-tokens';
export * from './install-session-token';
