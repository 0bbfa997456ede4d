import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadSidecarConfig, sidecarConfigSchema } from '../../src/config/index.js';
import { sidecarConfigProblems as problems } from '../helpers/config-problems.js';
import { tempDir } from '../helpers/cli.js';

// The config keys that serve the sidecar's identity to local processes (issue 16): `sds` and `workloadApi`. The
// schema refuses what could leak the key (a non-loopback port, an abstract socket); the loader refuses what would
// fail at start (a missing directory, a path that is a file, an unknown group), each naming the field.

const identityOnly = {
  trustDomain: 'example.org',
  identity: { files: { cert: 'svid.pem', key: 'svid.key', bundle: 'bundle.pem' } },
};

describe('sidecar config: sds and workloadApi', () => {
  it('a sidecar may serve only its identity: sds or workloadApi alone is a whole config', () => {
    expect(sidecarConfigSchema.parse({ ...identityOnly, sds: { listen: 'unix:/run/meshward/sds.sock' } }).sds).toEqual({ listen: { path: '/run/meshward/sds.sock' } });
    expect(sidecarConfigSchema.parse({ ...identityOnly, workloadApi: { listen: 'unix:///run/spire/agent.sock', group: 'envoy' } }).workloadApi).toEqual({
      listen: { path: '/run/spire/agent.sock' },
      group: 'envoy',
    });
    expect(sidecarConfigSchema.parse({ ...identityOnly, sds: { listen: '127.0.0.1:0' } }).sds).toEqual({ listen: { host: '127.0.0.1', port: 0 } });
    expect(sidecarConfigSchema.parse({ ...identityOnly, sds: { listen: '[::1]:8234', group: undefined } }).sds!.listen).toEqual({ host: '::1', port: 8234 });
    expect(problems(identityOnly)).toEqual(['sidecar.yaml: give inbound, outbound, sds or workloadApi (any of them, or several): a sidecar with none has nothing to do']);
  });

  it('refuses an address that would hand the key to the network or to anyone, naming the field', () => {
    expect(problems({ ...identityOnly, sds: { listen: '0.0.0.0:8234' } })).toEqual([
      'sidecar.yaml: sds.listen: "0.0.0.0:8234" is not on loopback: the private key served there would be open to the network; use unix:PATH, or 127.0.0.1, [::1] or localhost',
    ]);
    expect(problems({ ...identityOnly, workloadApi: { listen: '127.0.0.1:8234' } })).toEqual(['sidecar.yaml: workloadApi.listen: "127.0.0.1:8234" is not unix:PATH']);
    expect(problems({ ...identityOnly, sds: { listen: 'unix:@meshward' } })).toEqual([
      'sidecar.yaml: sds.listen: "unix:@meshward" is an abstract socket, which has no file permissions to keep other users out: give a path',
    ]);
    expect(problems({ ...identityOnly, sds: { listen: 'unix:' } })).toEqual(['sidecar.yaml: sds.listen: "unix:" names no socket path: give unix:PATH or unix:///ABSOLUTE/PATH']);
    expect(problems({ ...identityOnly, sds: { listen: 'sds.sock' } })).toEqual(['sidecar.yaml: sds.listen: "sds.sock" is not unix:PATH or HOST:PORT on loopback']);
    expect(problems({ ...identityOnly, sds: { listen: '127.0.0.1:8234', group: 'envoy' } })).toEqual([
      'sidecar.yaml: sds.group: applies to a unix: socket only: a TCP port has no file permissions',
    ]);
    expect(problems({ ...identityOnly, sds: { listen: 'unix:/s', mode: '0666' } })).toEqual(['sidecar.yaml: sds: unknown field "mode"; known fields: listen, group']);
  });

  it('the loader resolves the path against the config\'s directory and the group to its GID, and refuses what cannot start', () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const f of ['svid.pem', 'svid.key', 'bundle.pem']) writeFileSync(join(dir, f), '');
      mkdirSync(join(dir, 'run'));
      const file = join(dir, 'sidecar.yaml');
      const load = (config: object) => {
        writeFileSync(file, stringify({ ...identityOnly, ...config }));
        return loadSidecarConfig(file);
      };
      const failure = (config: object) => {
        try {
          load(config);
          return [];
        } catch (err) {
          return (err as Error).message.split('\n');
        }
      };

      const loaded = load({ sds: { listen: 'unix:run/sds.sock', group: 'daemon' }, workloadApi: { listen: 'unix:run/sds.sock', group: 1 } });
      expect(loaded.sds).toEqual({ listen: { path: join(dir, 'run/sds.sock') }, group: 1 });
      expect(loaded.workloadApi).toEqual(loaded.sds);

      writeFileSync(join(dir, 'run/not-a-socket'), 'keep me');
      expect(failure({
        sds: { listen: 'unix:missing/sds.sock', group: 'no-such-group-here' },
        workloadApi: { listen: 'unix:run/not-a-socket' },
      })).toEqual([
        `${file}: sds.listen: the socket's directory ${join(dir, 'missing')} does not exist`,
        `${file}: sds.group: there is no group "no-such-group-here" on this system`,
        `${file}: workloadApi.listen: ${join(dir, 'run/not-a-socket')} exists and is not a socket; it is never overwritten: remove it or choose another path`,
      ]);
      expect(failure({ sds: { listen: `unix:/${'d'.repeat(99)}` } })).toEqual([`${file}: sds.listen: /${'d'.repeat(99)} is 100 bytes long; a socket path may have at most 99 here`]);
      expect(failure({ sds: { listen: 'unix:run/one.sock', group: 'daemon' }, workloadApi: { listen: 'unix:run/one.sock' } })).toEqual([
        `${file}: workloadApi.group: sds and workloadApi share one socket, so they must give the same group (or none)`,
      ]);
    } finally {
      cleanup();
    }
  });
});
