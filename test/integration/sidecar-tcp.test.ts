import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { stopChild, tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, ORDERS_ID, readJsonLines, runSidecar, WEB_ID, type Mesh, type RunningSidecar, type SvidFiles } from '../helpers/sidecar.js';

// A tcp:// app behind the inbound sidecar: after the mTLS handshake the peer is judged by its principal alone, and
// an allowed connection is spliced to the app byte for byte. The app is an echo server; clients are openssl
// s_client and node:tls.

const INTRUDER_ID = `spiffe://${TD}/ns/default/sa/intruder`;

const POLICY = `
defaultAction: deny
rules:
  - name: web-connects
    action: allow
    from: { principals: ["${WEB_ID}"] }
`;

interface Exchange {
  received: Buffer;
  /** The socket's error, if it failed (a handshake refused, a reset). */
  error?: NodeJS.ErrnoException;
  /** The TLS handshake finished on the client's side. */
  secure: boolean;
}

describe('sidecar: a tcp:// app, authorized by principal', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: net.Server;
  let orders: RunningSidecar;
  let web: SvidFiles;
  let intruder: SvidFiles;
  let auditFile: string;
  let host: string;
  let port: number;
  const appConnections: net.Socket[] = [];
  /** Connections made with each SVID in this file, so that the audit log can be checked against them exactly. */
  const made = new Map<SvidFiles, number>();
  const count = (svid: SvidFiles | undefined) => svid && made.set(svid, (made.get(svid) ?? 0) + 1);

  beforeAll(async () => {
    app = net.createServer((s) => {
      appConnections.push(s);
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    mesh = await makeMesh(dir);
    const ordersSvid = await mesh.issue('orders', ORDERS_ID);
    web = await mesh.issue('web', WEB_ID);
    intruder = await mesh.issue('intruder', INTRUDER_ID);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    auditFile = join(dir, 'audit.jsonl');
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${(app.address() as AddressInfo).port}`, policy: policyFile },
      admin: { listen: '127.0.0.1:0' },
      audit: { path: auditFile },
    });
    const at = orders.inbound!.lastIndexOf(':');
    host = orders.inbound!.slice(0, at);
    port = Number(orders.inbound!.slice(at + 1));
  });

  afterAll(async () => {
    await orders?.stop();
    for (const s of appConnections) s.destroy();
    app?.close();
    cleanup();
  });

  /** Connects with node:tls, writes `payload` as soon as the handshake is done, and collects what comes back until the connection closes or `until` bytes arrived. */
  function tlsExchange(svid: SvidFiles | undefined, payload: Buffer, options: { until?: number; halfClose?: boolean } = {}): Promise<Exchange> {
    count(svid);
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let length = 0;
      let error: NodeJS.ErrnoException | undefined;
      let secure = false;
      const socket = tls.connect({
        host,
        port,
        ca: readFileSync(mesh.bundle),
        ...(svid ? { cert: readFileSync(svid.cert), key: readFileSync(svid.key) } : {}),
        servername: 'localhost',
      });
      socket.on('secureConnect', () => {
        secure = true;
        if (options.halfClose) socket.end(payload);
        else socket.write(payload);
      });
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (options.until !== undefined && length >= options.until) socket.end();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => (error = err));
      socket.on('close', () => resolve({ received: Buffer.concat(chunks), secure, ...(error ? { error } : {}) }));
    });
  }

  /** `openssl s_client … -quiet`: writes `line`, waits for it to come back (or the connection to end), then closes stdin. */
  function opensslExchange(svid: SvidFiles | undefined, line: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const args = ['s_client', '-connect', `${host}:${port}`, '-CAfile', mesh.bundle, '-quiet', '-no_ign_eof'];
    if (svid) args.push('-cert', svid.cert, '-key', svid.key);
    count(svid);
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.stdin.on('error', () => undefined);
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes(line)) child.stdin.end();
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.write(line);
    });
  }

  /** The authz records once there are as many as connections were decided (records reach the disk after the decision). */
  async function auditRecords(): Promise<Record<string, unknown>[]> {
    const expected = [...made.values()].reduce((a, b) => a + b, 0);
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 200 && records.length < expected; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 25));
      records = readJsonLines(auditFile).filter((r) => r.type === 'authz');
    }
    return records;
  }

  it('echoes through the sidecar for openssl s_client with an allowed SVID', async () => {
    const r = await opensslExchange(web, 'hello from openssl\n');
    expect(r.stdout).toBe('hello from openssl\n');
    expect(r.code).toBe(0);
  });

  it('echoes through the sidecar for node:tls with an allowed SVID, byte for byte', async () => {
    const payload = Buffer.concat([Buffer.from('hello from node\n'), randomBytes(1024 * 1024)]);
    const r = await tlsExchange(web, payload, { until: payload.length });
    expect(r.error).toBeUndefined();
    expect(r.received.length).toBe(payload.length);
    expect(r.received.equals(payload)).toBe(true);
  });

  it('carries the echo back to a client that half-closes after writing', async () => {
    const payload = Buffer.from('write then shut down writing\n');
    const r = await tlsExchange(web, payload, { halfClose: true });
    expect(r.error).toBeUndefined();
    expect(r.received.toString()).toBe(payload.toString());
  });

  it('closes the connection of a valid SVID the policy does not allow, without an echoed byte', async () => {
    const before = appConnections.length;
    const viaNode = await tlsExchange(intruder, Buffer.from('let me in\n'));
    expect(viaNode.secure).toBe(true);
    expect(viaNode.received.length).toBe(0);
    const viaOpenssl = await opensslExchange(intruder, 'let me in\n');
    expect(viaOpenssl.stdout).toBe('');
    expect(appConnections.length).toBe(before);
  });

  it('fails the handshake of a client without a certificate', async () => {
    const viaNode = await tlsExchange(undefined, Buffer.from('anonymous\n'));
    expect(viaNode.received.length).toBe(0);
    expect(viaNode.error?.code).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET/);
    const viaOpenssl = await opensslExchange(undefined, 'anonymous\n');
    expect(viaOpenssl.stdout).toBe('');
    expect(viaOpenssl.code).not.toBe(0);
  });

  it('audits the allowed and the denied connections with their principal and decision', async () => {
    expect((await tlsExchange(web, Buffer.from('audited\n'), { until: 8 })).received.toString()).toBe('audited\n');
    expect((await tlsExchange(intruder, Buffer.from('audited\n'))).received.length).toBe(0);
    const records = await auditRecords();
    const allowed = records.filter((r) => r.principal === WEB_ID);
    const denied = records.filter((r) => r.principal === INTRUDER_ID);
    expect(allowed).toHaveLength(made.get(web)!);
    expect(denied).toHaveLength(made.get(intruder)!);
    for (const r of allowed) {
      expect(r).toMatchObject({ direction: 'inbound', method: 'CONNECT', status: 200, decision: { outcome: 'allow', rule: 'web-connects' } });
    }
    for (const r of denied) {
      expect(r).toMatchObject({ direction: 'inbound', method: 'CONNECT', status: 403, decision: { outcome: 'deny', rule: 'default' } });
    }
    // A refused handshake decides nothing: no record without a principal.
    expect(records).toHaveLength(allowed.length + denied.length);
  });
});

describe('sidecar: a tcp:// app that is down', () => {
  const { dir, cleanup } = tempDir();
  let orders: RunningSidecar;
  let web: SvidFiles;
  let mesh: Mesh;
  let auditFile: string;

  beforeAll(async () => {
    // A port that was just free: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    mesh = await makeMesh(dir);
    const ordersSvid = await mesh.issue('orders', ORDERS_ID);
    web = await mesh.issue('web', WEB_ID);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    auditFile = join(dir, 'audit.jsonl');
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${deadPort}`, policy: policyFile },
      admin: { listen: '127.0.0.1:0' },
      audit: { path: auditFile },
    });
  });

  afterAll(async () => {
    await orders?.stop();
    cleanup();
  });

  it('closes an allowed connection it cannot carry to the app, and still audits the decision', async () => {
    const at = orders.inbound!.lastIndexOf(':');
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = tls.connect({
        host: orders.inbound!.slice(0, at),
        port: Number(orders.inbound!.slice(at + 1)),
        ca: readFileSync(mesh.bundle),
        cert: readFileSync(web.cert),
        key: readFileSync(web.key),
        servername: 'localhost',
      });
      socket.on('secureConnect', () => socket.write('anyone there?\n'));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    expect(received.length).toBe(0);
    // Every decision is audited (sidecar.ts: "Audit records for every decision"), also an allow whose app is down.
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 200 && records.length === 0; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 25));
      records = existsSync(auditFile) ? readJsonLines(auditFile).filter((r) => r.type === 'authz') : [];
    }
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ principal: WEB_ID, decision: { outcome: 'allow', rule: 'web-connects' }, status: 503 });
    expect(records[0]!.upstreamError).toEqual(expect.stringContaining('ECONNREFUSED'));
  });
});

describe('sidecar: a tcp:// client that leaves during the handshake', () => {
  const { dir, cleanup } = tempDir();
  let orders: RunningSidecar;
  let app: net.Server;
  let client: { ca: Buffer; cert: Buffer; key: Buffer };
  let address: { host: string; port: number };

  beforeAll(async () => {
    app = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const mesh = await makeMesh(dir);
    const ordersSvid = await mesh.issue('orders', ORDERS_ID);
    const web = await mesh.issue('web', WEB_ID);
    client = { ca: readFileSync(mesh.bundle), cert: readFileSync(web.cert), key: readFileSync(web.key) };
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    // One connection at a time: a connection left behind would keep out everyone after it.
    orders = await runSidecar(dir, 'orders', {
      trustDomain: TD,
      identity: { files: { cert: ordersSvid.cert, key: ordersSvid.key, bundle: mesh.bundle } },
      inbound: { listen: '127.0.0.1:0', app: `tcp://127.0.0.1:${(app.address() as AddressInfo).port}`, policy: policyFile, limits: { maxConnections: 1 } },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    });
    const at = orders.inbound!.lastIndexOf(':');
    address = { host: orders.inbound!.slice(0, at), port: Number(orders.inbound!.slice(at + 1)) };
  });

  afterAll(async () => {
    await orders?.stop();
    app?.close();
    cleanup();
  });

  it('lets the connection go, so it neither holds a place under maxConnections nor holds up SIGTERM', { timeout: 30_000 }, async () => {
    // The client's part of the handshake is done, and at once its FIN, before the sidecar has finished its own part.
    await new Promise<void>((resolve) => {
      const leaving = tls.connect({ ...address, ...client, servername: 'localhost' }, () => leaving.destroy());
      leaving.on('close', () => resolve());
    });
    // /readyz counts the listener's connections: ask until the sidecar has seen this one end (bounded).
    const deadline = performance.now() + 10_000;
    let readyz = await httpRequest(orders.admin, '/readyz');
    while (readyz.status !== 200 && performance.now() < deadline) readyz = await httpRequest(orders.admin, '/readyz');
    expect(JSON.parse(readyz.body)).toEqual({ status: 'ready' });

    // The one place is free again: an allowed client is echoed.
    const echoed = await new Promise<string>((resolve) => {
      let received = '';
      const socket = tls.connect({ ...address, ...client, servername: 'localhost' }, () => socket.end('still here\n'));
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
    });
    expect(echoed).toBe('still here\n');
    expect(await stopChild(orders.child, 'SIGTERM')).toBe(0);
  });
});
