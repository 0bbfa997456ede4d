export * from './duration.js';
export * from './errors.js';
export * from './issue-message.js';
export * from './load.js';
export * from './strict-object.js';
export * from './sidecar-config.js';
export * from './sidecar-schema.js';
export * from './watch-filter.js';
