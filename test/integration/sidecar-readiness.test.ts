import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { tempDir } from '../helpers/cli.js';
import { identityOf } from '../helpers/h2-client.js';
import { ALLOW_WEB_GET_ORDERS, httpRequest, makeMesh, ORDERS_ID, runSidecar, WEB_ID, type RunningSidecar } from '../helpers/sidecar.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Issue 13, item 2: /readyz must fail while the sidecar cannot serve. Here: the process is nearly out of file
// descriptors (the issue's EMFILE: every request failed while /readyz said ready). A sidecar runs with a small
// descriptor limit and a connection cap far above it; idle mTLS connections fill its descriptors. (A listener at
// maxConnections is the other case: sidecar-limits.test.ts, "connection cap".)

const MAX_OPEN_FILES = 200;

describe('sidecar: /readyz when the process runs out of file descriptors (issue 13, item 2)', () => {
  const { dir, cleanup } = tempDir();
  let app: http.Server;
  let sidecar: RunningSidecar;
  const sockets: tls.TLSSocket[] = [];

  beforeAll(async () => {
    app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const mesh = await makeMesh(dir);
    const orders = await mesh.issue('orders', ORDERS_ID);
    await mesh.issue('web', WEB_ID);
    writeFileSync(join(dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    sidecar = await runSidecar(
      dir,
      'orders',
      {
        trustDomain: TD,
        identity: { files: { cert: orders.cert, key: orders.key, bundle: mesh.bundle } },
        inbound: {
          listen: '127.0.0.1:0',
          app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
          policy: join(dir, 'policy.yaml'),
          limits: { maxConnections: 100_000 },
        },
        admin: { listen: '127.0.0.1:0' },
      },
      {},
      { maxOpenFiles: MAX_OPEN_FILES },
    );
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await sidecar?.stop();
    app?.close();
    cleanup();
  });

  const readyz = async () => {
    const res = await httpRequest(sidecar.admin, '/readyz');
    return { status: res.status, body: JSON.parse(res.body) as { status: string; reason?: string } };
  };

  it('says not ready, with the reason, once descriptors run short, and ready again once connections close', async () => {
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready' } });
    const client = identityOf(dir, 'web', join(dir, 'ca', 'bundle.pem'));
    const [host, port] = [sidecar.inbound!.slice(0, sidecar.inbound!.lastIndexOf(':')), Number(sidecar.inbound!.slice(sidecar.inbound!.lastIndexOf(':') + 1))];
    let answer = await readyz();
    // One connection at a time, each one finishing its handshake, until the sidecar says it cannot take more.
    while (answer.status === 200 && sockets.length < MAX_OPEN_FILES) {
      const socket = tls.connect({ host, port, ...client, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => undefined);
      sockets.push(socket);
      await new Promise((resolve) => socket.once('secureConnect', resolve).once('close', resolve));
      answer = await readyz();
    }
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({ status: 'not ready', reason: expect.stringMatching(/file descriptors in use: new connections would fail$/) as string });
    // Still short of the limit: the probe answers, and says so before connections start to fail.
    expect(sockets.length).toBeLessThan(MAX_OPEN_FILES);

    for (const socket of sockets.splice(0, 40)) socket.destroy();
    let recovered = answer;
    for (let attempt = 0; attempt < 100 && recovered.status !== 200; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      recovered = await readyz();
    }
    expect(recovered).toEqual({ status: 200, body: { status: 'ready' } });
  });
});
