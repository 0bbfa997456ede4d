import type { CaSvidSource, CaSvidSourceOptions } from './ca-svid-source.js';

export type { CaSvidSource, CaSvidSourceOptions, CaSvidSourceStats } from './ca-svid-source.js';

/** An SVID from the meshward CA. gRPC is loaded here, on first use: a sidecar with file identity never needs it. */
export async function startCaSvidSource(options: CaSvidSourceOptions): Promise<CaSvidSource> {
  const { CaSvidSource } = await import('./ca-svid-source.js');
  return CaSvidSource.start(options);
}
export { checkSvidFiles, FileSvidSource, type FileSvidSourceOptions, type FileSvidSourceStats, type SvidFileContents, type SvidFiles } from './file-svid-source.js';
export { renewalDelayMs, retryDelayMs } from './renewal-schedule.js';
export { SvidStore } from './svid-store.js';
export type { IdentitySnapshot, Svid, SvidSource } from './svid-source.js';
export { checkServerCertificate, loadServerCertificate, watchServerCertificate, type ServerCertificate, type ServerCertificateFiles } from './server-certificate.js';
export type { WatchedFileSet } from './watched-file-set.js';
