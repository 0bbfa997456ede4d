import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { ipList } from '../../src/filters/ip-list.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, serveChain, startApp, type Harness } from '../helpers/filter-harness.js';

// ipList in front of a real app, judged by the real TCP peer: a dual-stack listener sees IPv4 clients as
// ::ffff:127.0.0.1, which an IPv4 block must still catch.

describe('ipList through real sockets', () => {
  const { dir, cleanup } = tempDir('meshward-iplist-sockets-');
  const open: Array<{ close(): unknown }> = [];
  let app: Harness;
  let calls = 0;

  beforeAll(async () => {
    app = await startApp((_req, res) => {
      calls++;
      res.end('ok');
    });
  });
  afterAll(async () => {
    for (const o of open) await o.close();
    await app.close();
    cleanup();
  });

  async function edge(settings: Record<string, unknown>, host: string) {
    const env = filterEnv({ configDir: dir });
    const filter: HttpFilter = await ipList.create(ipList.settings.parse(settings), env);
    const served = await serveChain([filter], app.port, host);
    open.push(served, { close: () => filter.close?.() });
    return { port: served.port, env };
  }

  it('denies an IPv4 block on a dual-stack listener, where IPv4 peers arrive IPv4-mapped; IPv6 peers pass', async () => {
    const { port } = await edge({ deny: ['127.0.0.0/8'] }, '::');
    calls = 0;
    const v4 = await fetch(`http://127.0.0.1:${port}/`);
    expect(v4.status).toBe(403);
    expect(await v4.json()).toMatchObject({ error: 'forbidden', reason: 'the client address is on a deny list' });
    expect((await fetch(`http://[::1]:${port}/`)).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('follows an allow-list file as it changes', async () => {
    const file = join(dir, 'allow.txt');
    writeFileSync(file, '# our hosts\n::1\n');
    const { port, env } = await edge({ allowFiles: ['allow.txt'] }, '::');
    expect((await fetch(`http://[::1]:${port}/`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(403);
    writeFileSync(file, '127.0.0.1\n');
    await env.waitFor(/IP list reloaded/);
    expect((await fetch(`http://[::1]:${port}/`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const trusting = await edge({ deny: ['203.0.113.0/24'], trustedProxies: ['127.0.0.1'] }, '127.0.0.1');
    const untrusting = await edge({ deny: ['203.0.113.0/24'] }, '127.0.0.1');
    const forwarded = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' };
    expect((await fetch(`http://127.0.0.1:${trusting.port}/`, { headers: forwarded })).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${trusting.port}/`, { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' } })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${untrusting.port}/`, { headers: forwarded })).status).toBe(200);
  });
});
