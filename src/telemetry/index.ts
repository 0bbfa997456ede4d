export * from './append-log.js';
export * from './audit-chain.js';
export * from './audit-log.js';
export * from './logger.js';
export * from './metrics.js';
export * from './denial-spikes.js';
export * from './trace-context.js';
export * from './prometheus.js';
export * from './admin-server.js';
export * from './listen.js';
export * from './tracing.js';
// withoutQuery: the name src/proxy still calls redactedPath by; to go once it calls redactedPath.
export { redactedPath, redactedPath as withoutQuery } from './redact.js';
export { requestIdOf } from './request-id.js';
