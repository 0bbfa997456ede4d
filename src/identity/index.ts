export { CaSvidSource, type CaSvidSourceOptions, type CaSvidSourceStats } from './ca-svid-source.js';
export { checkSvidFiles, FileSvidSource, type FileSvidSourceOptions, type FileSvidSourceStats, type SvidFileContents, type SvidFiles } from './file-svid-source.js';
export { renewalDelayMs, retryDelayMs } from './renewal-schedule.js';
export { RotatingServerCredentials, type ServerTlsMaterial } from './rotating-server-credentials.js';
export { SvidStore } from './svid-store.js';
export type { IdentitySnapshot, Svid, SvidSource } from './svid-source.js';
