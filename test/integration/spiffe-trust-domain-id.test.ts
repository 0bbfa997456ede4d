// The trust domain's own ID (spiffe://TD) names no workload: X509-SVID sections 3.1 and 5.2 forbid it in a leaf.
// A certificate carrying it, made with openssl and chaining to the bundle (so that the TLS handshake passes), is
// no principal at a sidecar's inbound listeners (HTTP/1.1, HTTP/2, tcp://), and no SVID when a CA serves it.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient, makeCsr } from '../../src/ca/index.js';
import { caService } from '../../src/ca/proto.js';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { OpensslPki, SVID_EXTENSIONS, type CertAndKey } from '../helpers/openssl-pki.js';
import { ecKey } from '../helpers/pki.js';
import { makeMesh, ORDERS_ID, runSidecar, WEB_ID, type Mesh, type RunningSidecar } from '../helpers/sidecar.js';

const run = promisify(execFile);
const TRUST_DOMAIN_ID = `spiffe://${TD}`;
// Anyone identified may in: what keeps the trust domain ID out is the identity check, not the policy.
const ALLOW_ANY_PRINCIPAL = 'defaultAction: allow\n';

describe('a leaf certificate for the trust domain ID', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let root: CertAndKey;
  let bare: CertAndKey;
  let web: CertAndKey;
  let httpApp: http.Server;
  let tcpApp: net.Server;
  const seen: string[] = [];
  const tcpConnections: net.Socket[] = [];
  const sidecars: RunningSidecar[] = [];

  const sidecarFor = async (name: string, app: string) => {
    const svid = await mesh.issue(name, ORDERS_ID);
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, ALLOW_ANY_PRINCIPAL);
    const sidecar = await runSidecar(dir, name, {
      trustDomain: TD,
      identity: { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app, policy },
      admin: { listen: '127.0.0.1:0' },
    });
    sidecars.push(sidecar);
    return sidecar;
  };

  beforeAll(async () => {
    httpApp = http.createServer((req, res) => {
      seen.push(String(req.headers['x-meshward-principal']));
      res.end('hello');
    });
    tcpApp = net.createServer((s) => {
      tcpConnections.push(s);
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await Promise.all([httpApp, tcpApp].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    mesh = await makeMesh(dir);
    const pki = new OpensslPki(dir);
    root = { cert: join(mesh.caDir, 'root.pem'), key: join(mesh.caDir, 'root.key') };
    bare = pki.svid('trust-domain-id', root, `URI:${TRUST_DOMAIN_ID}`);
    web = pki.svid('openssl-web', root);
  });

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    for (const s of tcpConnections) s.destroy();
    httpApp?.close();
    tcpApp?.close();
    cleanup();
  });

  it('is no principal at an HTTP inbound listener, over HTTP/1.1 or HTTP/2: 403, and the app never sees the request', async () => {
    const sidecar = await sidecarFor('orders-http', `http://127.0.0.1:${(httpApp.address() as AddressInfo).port}`);
    const port = sidecar.inbound!.split(':')[1];
    const curl = async (client: CertAndKey, version: string) => {
      const args = ['-sS', version, '--cert', client.cert, '--key', client.key, '--cacert', mesh.bundle, '-o', '/dev/null', '-w', '%{http_code}'];
      return (await run('curl', [...args, `https://localhost:${port}/`])).stdout;
    };
    for (const version of ['--http1.1', '--http2']) {
      expect(await curl(bare, version), version).toBe('403');
      // The same openssl PKI with a workload's ID gets through: the refusal is about the ID alone.
      expect(await curl(web, version), version).toBe('200');
    }
    expect(seen).toEqual([WEB_ID, WEB_ID]);
  });

  it('is no principal at a tcp:// inbound listener: the connection ends before it reaches the app', async () => {
    const sidecar = await sidecarFor('orders-tcp', `tcp://127.0.0.1:${(tcpApp.address() as AddressInfo).port}`);
    const [host, port] = sidecar.inbound!.split(':');
    const exchange = (client: CertAndKey) =>
      new Promise<string>((resolve) => {
        let received = '';
        const socket = tls.connect({ host, port: Number(port), ca: readFileSync(mesh.bundle), cert: readFileSync(client.cert), key: readFileSync(client.key), servername: 'localhost' });
        socket.on('secureConnect', () => socket.write('ping'));
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString();
          if (received === 'ping') socket.end();
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(received));
      });
    expect(await exchange(bare)).toBe('');
    expect(tcpConnections).toHaveLength(0);
    expect(await exchange(web)).toBe('ping');
    expect(tcpConnections).toHaveLength(1);
  });

  it('is refused by a CA client when a CA serves it', async () => {
    const pki = new OpensslPki(dir);
    const servingKey = pki.key('fake-ca');
    const serving = pki.cert('fake-ca', root, servingKey, [`subjectAltName=URI:spiffe://${TD}/meshward/ca,DNS:localhost`, ...SVID_EXTENSIONS]);
    const leafPem = readFileSync(bare.cert, 'utf8');
    const server = new grpc.Server();
    server.addService(caService().service, {
      Sign: (_call: unknown, callback: grpc.sendUnaryData<object>) =>
        callback(null, {
          spiffeId: TRUST_DOMAIN_ID,
          certChain: [Buffer.from(new X509Certificate(leafPem).raw)],
          certChainPem: leafPem,
          bundle: { trustDomain: TD, pem: readFileSync(root.cert, 'utf8') },
          serial: '01',
          notAfterUnix: Math.floor(Date.now() / 1000) + 3600,
        }),
    });
    const credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(serving), private_key: readFileSync(servingKey) }]);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    const client = new CaClient({ address: `127.0.0.1:${port}`, trustDomain: TD, bundlePem: readFileSync(root.cert, 'utf8') });
    try {
      await expect(client.sign({ csr: await makeCsr(ecKey()), joinToken: 'token' })).rejects.toThrow(
        `the CA at 127.0.0.1:${port} served an unusable SVID: "${TRUST_DOMAIN_ID}" is a trust domain ID, not a workload's`,
      );
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
