import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startCaSvidSource, type CaSvidSource } from '../../src/identity/index.js';
import { svidIdentity } from '../../src/spiffe/x509-svid.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { initCaDir, serveCa, TD, token, type ServingCa } from '../helpers/ca.js';

// A full root rotation under traffic. Three workloads bootstrap from the CA with join tokens, renew over mTLS at
// half-life, follow the bundle stream, and keep handshaking with each other (mutual TLS, SPIFFE IDs checked) the
// whole time. No handshake between any two of them may fail, from before the rotation starts until the old root
// has left the bundle.

interface Workload {
  id: string;
  source: CaSvidSource;
  server: Server;
  port: number;
  serials: Set<string>;
  issuers: Set<string>;
}

async function startWorkload(ca: ServingCa, caDir: string, name: string, failures: string[]): Promise<Workload> {
  const id = `spiffe://${TD}/ns/test/sa/${name}`;
  const source = await startCaSvidSource({
    address: ca.address,
    trustDomain: TD,
    bootstrapBundlePem: readFileSync(join(caDir, 'bundle.pem'), 'utf8'),
    spiffeId: id,
    joinToken: await token(caDir, id),
  });
  const tlsOptions = () => {
    const { svid, bundlePem } = source.current()!;
    return { key: svid.keyPem, cert: svid.certChainPem, ca: bundlePem, minVersion: 'TLSv1.3' as const };
  };
  const server = createServer({ ...tlsOptions(), requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
    const peer = svidIdentity(socket.getPeerCertificate().raw, TD);
    if (!peer.ok) failures.push(`${name} accepted a peer without an SVID: ${peer.error}`);
    socket.end('ok');
  });
  server.on('tlsClientError', (err) => failures.push(`${name} server: ${err.message}`));
  const serials = new Set<string>();
  const issuers = new Set<string>();
  const record = () => {
    const leaf = new X509Certificate(source.current()!.svid.certChainPem);
    serials.add(leaf.serialNumber);
    issuers.add(leaf.issuer);
  };
  record();
  source.onChange(() => {
    server.setSecureContext(tlsOptions());
    record();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { id, source, server, port: (server.address() as AddressInfo).port, serials, issuers };
}

function handshake(from: Workload, to: Workload): Promise<void> {
  const { svid, bundlePem } = from.source.current()!;
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: to.port,
      key: svid.keyPem,
      cert: svid.certChainPem,
      ca: bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: (_host, cert) => {
        const id = svidIdentity(cert.raw, TD);
        return id.ok && id.value.uri === to.id ? undefined : new Error(`expected ${to.id}`);
      },
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('data', () => undefined);
    socket.on('end', () => resolve());
    socket.on('error', reject);
  });
}

describe('root rotation under continuous renewal and traffic', () => {
  const { dir, cleanup } = tempDir();
  const workloads: Workload[] = [];
  let ca: ServingCa | undefined;
  afterAll(async () => {
    for (const w of workloads) {
      await w.source.close();
      w.server.close();
    }
    await ca?.stop();
    cleanup();
  });

  it('never fails a handshake between any two workloads, from rotation start to old-root retirement', { timeout: 90_000 }, async () => {
    // Short lifetimes so the whole rotation fits in seconds: SVIDs live 4 s (renewed at ~2 s), the new root is
    // published 2 s before it signs, and the old root leaves 4 s + 4 s margin after that.
    const caDir = await initCaDir(dir, ['--max-ttl', '4s']);
    ca = await serveCa(caDir);
    const failures: string[] = [];
    for (const name of ['web', 'orders', 'payments']) workloads.push(await startWorkload(ca, caDir, name, failures));
    const oldRoot = new X509Certificate(readFileSync(join(caDir, 'root.pem'))).subject;

    let handshakes = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        await Promise.all(
          workloads.flatMap((a) =>
            workloads
              .filter((b) => b !== a)
              .map((b) =>
                handshake(a, b).then(
                  () => void handshakes++,
                  (err: Error) => void failures.push(`${a.id} -> ${b.id}: ${err.message}`),
                ),
              ),
          ),
        );
      }
    })();

    const rotate = await runCli(['ca', 'rotate', '--dir', caDir, '--propagation-delay', '2s']);
    expect(rotate.code, rotate.stderr).toBe(0);
    // Wait for the whole rotation: the CA logs each step; the last is the old root leaving the bundle.
    const deadline = Date.now() + 60_000;
    const roots = () => (readFileSync(join(caDir, 'bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length;
    let sawTwoRoots = false;
    while (Date.now() < deadline) {
      const state = JSON.parse(readFileSync(join(caDir, 'ca.json'), 'utf8'));
      sawTwoRoots ||= roots() === 2;
      if (sawTwoRoots && !state.rotation && roots() === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // And a little traffic once the old root is gone, with every workload on the new root.
    const settled = handshakes;
    while (handshakes < settled + 30) await new Promise((r) => setTimeout(r, 20));
    running = false;
    await traffic;

    expect(failures).toEqual([]);
    expect(sawTwoRoots).toBe(true);
    expect(roots()).toBe(1);
    const newRoot = new X509Certificate(readFileSync(join(caDir, 'root.pem'))).subject;
    expect(newRoot).not.toBe(oldRoot);
    for (const w of workloads) {
      // Each workload renewed several times and holds SVIDs from both roots over the run.
      expect(w.serials.size).toBeGreaterThanOrEqual(3);
      expect([...w.issuers].sort()).toEqual([newRoot, oldRoot].sort());
      expect(w.source.current()!.bundlePem).toBe(readFileSync(join(caDir, 'bundle.pem'), 'utf8'));
    }
    expect(handshakes).toBeGreaterThan(100);
  });
});
