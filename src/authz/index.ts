export * from './types.js';
export * from './policy/index.js';
export * from './ext-authz/index.js';
