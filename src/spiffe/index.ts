export * from './id.js';
export * from './x509-svid.js';
