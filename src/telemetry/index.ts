export * from './append-log.js';
export * from './audit-chain.js';
export * from './audit-log.js';
export * from './logger.js';
export * from './metrics.js';
export * from './denial-spikes.js';
export * from './trace-context.js';
