import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { makeMesh, outputContaining } from '../helpers/sidecar.js';

// ipList at the edge, judged by the real TCP peer of a real `meshward sidecar` ingress listening dual-stack, where
// IPv4 clients arrive as ::ffff:127.0.0.1, which an IPv4 block must still catch. Each case is a route of its own,
// which gives the listener's ipList other settings.

describe('ipList through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-iplist-sockets-');
  const allowFile = join(dir, 'allow.txt');
  let app: http.Server;
  let edge: Edge;
  let calls = 0;

  beforeAll(async () => {
    writeFileSync(allowFile, '# our hosts\n::1\n');
    app = http.createServer((req, res) => {
      calls++;
      req.resume();
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    edge = await startEdge(await makeMesh(dir), {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      ingress: {
        listen: '[::]:0',
        routes: [
          { prefix: '/v4-denied', to: 'orders', filters: { ipList: { deny: ['127.0.0.0/8'] } } },
          { prefix: '/allow-file', to: 'orders', filters: { ipList: { allowFiles: ['allow.txt'] } } },
          { prefix: '/trusting', to: 'orders', filters: { ipList: { deny: ['203.0.113.0/24'], trustedProxies: ['127.0.0.1'] } } },
          { prefix: '/', to: 'orders' },
        ],
        filters: [{ ipList: { deny: ['203.0.113.0/24'] } }],
      },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    cleanup();
  });

  /** A request from 127.0.0.1 (`v4`) or ::1 (`v6`) to the dual-stack listener. */
  const from = (family: 'v4' | 'v6', path: string, headers: Record<string, string> = {}) =>
    fetch(`https://${family === 'v4' ? '127.0.0.1' : '[::1]'}:${edge.port}${path}`, { headers, dispatcher: edge.dispatcher });

  it('denies an IPv4 block on a dual-stack listener, where IPv4 peers arrive IPv4-mapped; IPv6 peers pass', async () => {
    calls = 0;
    const v4 = await from('v4', '/v4-denied');
    expect(v4.status).toBe(403);
    expect(await v4.json()).toMatchObject({ error: 'forbidden', reason: 'the client address is on a deny list' });
    expect((await from('v6', '/v4-denied')).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('follows an allow-list file as it changes', async () => {
    expect((await from('v6', '/allow-file')).status).toBe(200);
    expect((await from('v4', '/allow-file')).status).toBe(403);
    writeFileSync(allowFile, '127.0.0.1\n');
    await outputContaining(edge.web, 'IP list reloaded');
    expect((await from('v6', '/allow-file')).status).toBe(403);
    expect((await from('v4', '/allow-file')).status).toBe(200);
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const forwarded = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' };
    expect((await from('v4', '/trusting', forwarded)).status).toBe(403);
    expect((await from('v4', '/trusting', { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' })).status).toBe(200);
    expect((await from('v4', '/untrusting', forwarded)).status).toBe(200);
  });
});
