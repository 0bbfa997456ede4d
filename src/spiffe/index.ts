export * from './id.js';
export * from './x509-svid.js';
export { x509 } from './x509.js';
