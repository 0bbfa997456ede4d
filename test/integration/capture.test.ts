import { chmodSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPodPair, run, runIn, startIn, type BackgroundProcess, type PodPair } from '../../src/demo/netns.js';
import { TD } from '../helpers/ca.js';
import { MESHWARD_BIN, REPO_ROOT, tempDir } from '../helpers/cli.js';
import { ALLOW_WEB_GET_ORDERS, makeMesh, ORDERS_ID, WEB_ID } from '../helpers/sidecar.js';

// Issue 14: transparent capture on a real kernel with real packets. Two "pods" (network namespaces joined by a
// veth pair, made and removed by this file), each with an app on 0.0.0.0, a `meshward sidecar` running as the
// proxy UID (1337), and the rules of `meshward capture`, installed with each back end in turn. Needs root, as CI
// runs; it never skips.

const PROXY_UID = 1337;
const NODE = process.execPath;
const meshward = (...args: string[]) => [NODE, MESHWARD_BIN, ...args];

// orders's app serves two ports, each behind an inbound listener of its own (issue 14: Node.js cannot read a
// redirected connection's original port, so the listener's port tells the sidecar which app port was called):
// HTTP/1.1 on 8080 and HTTP/2 without TLS (h2c, as a gRPC server speaks) on 9090. Besides them, a health endpoint
// on 8081 (excluded from capture, as a kubelet probe port is) and a port 7000 that nobody lists, which capture
// takes to the first listener like every other port. It logs every request it sees, so a test can tell that a
// request never reached it.
const ORDERS_APP = `
const http = require('node:http');
const http2 = require('node:http2');
for (const [port, create] of [[8080, http.createServer], [8081, http.createServer], [9090, http2.createServer], [7000, http.createServer]]) {
  create((req, res) => {
    console.log('seen ' + port + ' ' + req.method + ' ' + req.url);
    const body = JSON.stringify({ port, httpVersion: req.httpVersion, path: req.url, xfcc: req.headers['x-forwarded-client-cert'] ?? null, principal: req.headers['x-meshward-principal'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }).listen(port, '0.0.0.0', () => console.log('listening ' + port));
}`;

interface Answer {
  /** 0 when no HTTP answer came (curl's exit code says why). */
  status: number;
  headers: string;
  body: string;
  curlExit: number;
}

/** curl as a client in a pod: a real HTTP client, which knows nothing of the mesh. */
async function curl(netns: string, url: string, options: { uid?: number; method?: string; h2c?: boolean } = {}): Promise<Answer> {
  const version = options.h2c ? ['--http2-prior-knowledge'] : [];
  const r = await runIn(netns, ['curl', '-sS', '-i', '--noproxy', '*', '-m', '5', ...version, '-X', options.method ?? 'GET', url], { uid: options.uid });
  const [head = '', body = ''] = r.stdout.split(/\r\n\r\n/, 2);
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body, curlExit: r.code };
}

/** Every table of the namespace as each tool prints it, without timestamps and packet counters. */
async function tables(netns: string): Promise<string> {
  const commands = [['iptables-nft-save'], ['ip6tables-nft-save'], ['iptables-legacy-save'], ['ip6tables-legacy-save'], ['nft', 'list', 'ruleset']];
  const outputs = await Promise.all(commands.map((c) => runIn(netns, c)));
  return outputs
    .map((r, i) => `== ${commands[i]!.join(' ')} (exit ${r.code})\n${r.stdout}`)
    .join('\n')
    .replace(/^#.*\n/gm, '')
    .replace(/\[\d+:\d+\]/g, '[c]')
    .replace(/packets \d+ bytes \d+/g, 'packets n bytes n');
}

/**
 * Rules as a CNI plugin might leave them in a pod, written with each iptables variant and in both hooks capture
 * uses, so that --clean is seen to leave others' rules alone. (A table or hook chain that did not exist before
 * capture would be left behind empty: iptables-legacy keeps a nat table once it is made, iptables-nft an empty
 * base chain in nft's view, though iptables-nft-save shows the same table.)
 */
async function seedForeignRules(netns: string): Promise<void> {
  for (const variant of ['nft', 'legacy']) {
    for (const [family, address] of [['iptables', '192.0.2.1'], ['ip6tables', '2001:db8::1']] as const) {
      const r = await runIn(netns, [`${family}-${variant}-restore`, '--noflush'], {
        input: `*nat\n:CNI-EXAMPLE - [0:0]\n-A PREROUTING -d ${address} -j CNI-EXAMPLE\n-A OUTPUT -d ${address} -j CNI-EXAMPLE\n-A CNI-EXAMPLE -j RETURN\nCOMMIT\n`,
      });
      expect(r.code, r.stderr).toBe(0);
    }
  }
}

/** The back end's own listing of meshward's rules. */
async function backendView(netns: string, backend: string): Promise<string> {
  const variant = backend.replace(/^iptables-/, '');
  const commands = backend === 'nft' ? [['nft', 'list', 'table', 'inet', 'meshward']] : [[`iptables-${variant}-save`], [`ip6tables-${variant}-save`]];
  return (await Promise.all(commands.map((c) => runIn(netns, c)))).map((r) => r.stdout).join('\n');
}

async function capture(netns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runIn(netns, meshward('capture', ...args));
}

describe.sequential('meshward capture: two pods, real packets', () => {
  let pods: PodPair;
  let dir: { dir: string; cleanup: () => void };
  let ordersApp: BackgroundProcess;
  const sidecars: BackgroundProcess[] = [];
  const ordersUrl = (port: number, path: string) => `http://10.77.0.2:${port}${path}`;

  beforeAll(async () => {
    dir = tempDir('meshward-capture-');
    // The sidecars run as the proxy UID: everything they read must be readable by it.
    chmodSync(dir.dir, 0o755);
    const mesh = await makeMesh(dir.dir);
    chmodSync(mesh.caDir, 0o755);
    const config = (name: string, body: object) => {
      const file = join(dir.dir, `${name}.yaml`);
      writeFileSync(file, stringify({ trustDomain: TD, admin: { listen: '127.0.0.1:15000' }, ...body }));
      return file;
    };
    const svid = async (name: string, id: string) => {
      const files = await mesh.issue(name, id);
      chownSync(files.key, PROXY_UID, PROXY_UID);
      return { cert: files.cert, key: files.key, bundle: mesh.bundle };
    };
    writeFileSync(join(dir.dir, 'policy.yaml'), ALLOW_WEB_GET_ORDERS);
    const policy = join(dir.dir, 'policy.yaml');
    const ordersConfig = config('orders', {
      identity: { files: await svid('orders', ORDERS_ID) },
      inbound: [
        { listen: '0.0.0.0:15006', app: 'http://127.0.0.1:8080', policy },
        { listen: '0.0.0.0:15007', app: 'h2c://127.0.0.1:9090', policy },
      ],
    });
    // The routes' addresses are orders's own app ports, as a Service's would be: capture takes each to its listener
    // there. A call to orders:9090 takes the route for that port; a call to orders on any other port the other.
    const webConfig = config('web', {
      identity: { files: await svid('web', WEB_ID) },
      outbound: {
        listen: '127.0.0.1:15001',
        routes: [
          { host: 'orders:9090', address: '10.77.0.2:9090', spiffeId: ORDERS_ID },
          { host: 'orders', address: '10.77.0.2:8080', spiffeId: ORDERS_ID },
        ],
      },
    });

    pods = await createPodPair(['orders', 'payments']);
    // A second subnet on the same link, which web's capture excludes (--exclude-outbound-cidrs).
    for (const [pod, address] of [[pods.web, '10.77.1.1/24'], [pods.orders, '10.77.1.2/24']] as const) {
      expect((await run(['ip', '-n', pod.netns, 'address', 'add', address, 'dev', 'eth0'])).code).toBe(0);
    }
    await Promise.all([seedForeignRules(pods.web.netns), seedForeignRules(pods.orders.netns)]);
    ordersApp = startIn(pods.orders.netns, [NODE, '-e', ORDERS_APP], /(?=[\s\S]*listening 8080)(?=[\s\S]*listening 8081)(?=[\s\S]*listening 9090)[\s\S]*listening 7000/);
    const env = { ...process.env, MESHWARD_LOG_LEVEL: 'info' };
    for (const [pod, file] of [[pods.orders, ordersConfig], [pods.web, webConfig]] as const) {
      sidecars.push(startIn(pod.netns, meshward('sidecar', '--config', file), /"msg":"sidecar ready"/, { uid: PROXY_UID, env }));
    }
    await Promise.all([ordersApp, ...sidecars].map((p) => p.ready));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...sidecars, ordersApp].filter(Boolean).map((p) => p.stop()));
    await pods?.remove();
    dir?.cleanup();
  });

  it('runs the sidecars as the proxy UID', async () => {
    for (const sidecar of sidecars) {
      const status = await run(['cat', `/proc/${sidecar.child.pid}/status`]);
      // ip netns exec execs setpriv, which execs node: one process, whose UIDs are all 1337 by now.
      expect(status.stdout).toMatch(new RegExp(`^Uid:\\s+${PROXY_UID}\\s+${PROXY_UID}\\s+${PROXY_UID}\\s+${PROXY_UID}$`, 'm'));
    }
  });

  it('without capture, a plain client reaches orders\'s app around its sidecar (what capture closes)', async () => {
    const direct = await curl(pods.web.netns, ordersUrl(8080, '/api/around'));
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.body)).toMatchObject({ port: 8080, xfcc: null });
  });

  for (const backend of ['iptables-nft', 'iptables-legacy', 'nft']) {
    it(`${backend}: web's app is meshed unchanged on both of orders's ports, orders's app cannot be reached around its sidecar, and --clean restores the tables`, { timeout: 120_000 }, async () => {
      const before = await Promise.all([tables(pods.web.netns), tables(pods.orders.netns)]);
      const installs = [
        [pods.orders.netns, ['--backend', backend, '--inbound-ports', '8080:15006,9090:15007,*:15006', '--exclude-inbound-ports', '8081']],
        [pods.web.netns, ['--backend', backend, '--outbound-ports', '80,8080,9090', '--exclude-outbound-cidrs', '10.77.1.0/24']],
      ] as const;
      try {
        // Twice: the second run replaces the first.
        for (let i = 0; i < 2; i++) {
          for (const r of await Promise.all(installs.map(([netns, args]) => capture(netns, [...args])))) {
            expect(r.stderr).toBe('');
            expect(r.code).toBe(0);
            expect(r.stdout).toMatch(new RegExp(`^meshward capture: installed with ${backend} \\(IPv4 and IPv6\\)`));
          }
        }
        // One set of rules: one jump per hook and family, one redirect per captured port.
        const installed = await backendView(pods.web.netns, backend);
        const perFamily = backend === 'nft' ? 1 : 2;
        expect(installed.match(/jump MESHWARD_OUTPUT|-j MESHWARD_OUTPUT/g)).toHaveLength(perFamily);
        expect(installed.match(/--dport 8080 -j REDIRECT|tcp dport 8080 redirect/g)).toHaveLength(perFamily);
        const ordersRules = await backendView(pods.orders.netns, backend);
        expect(ordersRules.match(/--dport 9090 -j REDIRECT --to-ports 15007|tcp dport 9090 redirect to :15007/g)).toHaveLength(perFamily);

        // web's app calls orders by name on its own port, as it would without a mesh: it arrives through both sidecars.
        const meshed = await curl(pods.web.netns, 'http://orders:8080/api/orders/1');
        expect(meshed.status, meshed.headers).toBe(200);
        const seen = JSON.parse(meshed.body) as { port: number; xfcc: string; principal: string };
        expect(seen.port).toBe(8080);
        expect(seen.principal).toBe(WEB_ID);
        expect(seen.xfcc).toContain(`URI=${WEB_ID}`);
        expect(seen.xfcc).toContain(`By=${ORDERS_ID}`);

        // The same app's gRPC-style port, by the same name on its own port, over HTTP/2 without TLS: through web's
        // sidecar and orders's second inbound listener to the h2c server on 9090, which sees HTTP/2 and web.
        const second = await curl(pods.web.netns, 'http://orders:9090/api/orders/2', { h2c: true });
        expect(second.status, second.headers).toBe(200);
        expect(JSON.parse(second.body)).toMatchObject({ port: 9090, httpVersion: '2.0', path: '/api/orders/2', principal: WEB_ID });

        // No way around: plain HTTP to orders's pod address meets the inbound listener, which wants mTLS. Sent as
        // the proxy UID (web's capture lets it pass, as a pod without capture would) and to a port web does not
        // capture. The policy still decides: denied is 403 from orders's sidecar; a host without a route is 502
        // from web's. The excluded health port reaches the app directly. An excluded block and loopback are not
        // taken to web's sidecar (which would answer 502, having no route for them): the first meets orders's
        // capture directly, the second finds nothing listening.
        const [around8080, around9090, around7000, denied, unrouted, health, excluded, loopback] = await Promise.all([
          curl(pods.web.netns, ordersUrl(8080, '/api/around-8080'), { uid: PROXY_UID }),
          curl(pods.web.netns, ordersUrl(9090, '/api/around-9090'), { uid: PROXY_UID, h2c: true }),
          curl(pods.web.netns, ordersUrl(7000, '/api/around-7000')),
          curl(pods.web.netns, 'http://orders:8080/api/orders/1', { method: 'DELETE' }),
          curl(pods.web.netns, 'http://payments/pay'),
          curl(pods.web.netns, ordersUrl(8081, '/healthz')),
          curl(pods.web.netns, 'http://10.77.1.2:8080/api/excluded'),
          curl(pods.web.netns, 'http://127.0.0.1:8080/api/loopback'),
        ]);
        for (const answer of [excluded, loopback]) expect(answer.status, answer.headers).toBe(0);
        expect(loopback.curlExit).toBe(7); // connection refused
        for (const answer of [around8080, around9090, around7000]) {
          expect(answer.status).toBe(0);
          expect(answer.curlExit).not.toBe(0);
        }
        expect(ordersApp.output()).not.toMatch(/around-(8080|9090|7000)|excluded/);
        expect(denied.status).toBe(403);
        expect(denied.headers).toMatch(/^x-meshward-denied-by: default\r?$/im);
        expect(unrouted.status).toBe(502);
        expect(unrouted.body).toContain('payments');
        expect(health.status).toBe(200);
        expect(JSON.parse(health.body)).toMatchObject({ port: 8081, xfcc: null });
      } finally {
        for (const r of await Promise.all(installs.map(([netns]) => capture(netns, ['--clean'])))) {
          expect(r.stderr).toBe('');
          expect(r.stdout).toContain(`removed meshward's chains from ${backend}`);
        }
      }
      expect(await Promise.all([tables(pods.web.netns), tables(pods.orders.netns)])).toEqual(before);
      // And with the rules gone, the way around is open again: it was capture that closed it.
      expect((await curl(pods.web.netns, ordersUrl(8080, '/api/around-again'), { uid: PROXY_UID })).status).toBe(200);
      expect((await curl(pods.web.netns, ordersUrl(9090, '/api/around-again'), { uid: PROXY_UID, h2c: true })).status).toBe(200);
    });
  }
});

describe('meshward capture: refusals, nothing half-way', () => {
  let netns: string;
  let pods: PodPair | undefined;

  beforeAll(async () => {
    pods = await createPodPair([]);
    netns = pods.web.netns;
  });
  afterAll(async () => {
    await pods?.remove();
  });

  it('every command README\'s "Transparent capture" shows works as shown, and the last, --clean, leaves the tables as they were', { timeout: 90_000 }, async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /^## Transparent capture[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
    const commands = (/^```sh\n([\s\S]*?)^```/m.exec(section)?.[1] ?? '').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
    expect(commands.length).toBeGreaterThanOrEqual(5);
    expect(commands.at(-1)).toBe('meshward capture --clean');
    await seedForeignRules(netns);
    const before = await tables(netns);
    for (const command of commands) {
      const [name, ...args] = command.split(/\s+/);
      expect(name).toBe('meshward');
      const r = await runIn(netns, meshward(...args));
      expect(r.stderr, command).toBe('');
      expect(r.code, command).toBe(0);
    }
    expect(await tables(netns)).toBe(before);
  });

  it('without NET_ADMIN: exit 1 with the reason, and nothing installed', async () => {
    const before = await tables(netns);
    const r = await runIn(netns, meshward('capture'), { uid: PROXY_UID });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^meshward capture: capture needs the NET_ADMIN capability .*nothing was changed$/m);
    expect(await tables(netns)).toBe(before);
  });

  it('with no back end on the PATH: exit 1 naming what it looked for', async () => {
    const empty = tempDir('meshward-empty-path-');
    try {
      const r = await runIn(netns, ['env', `PATH=${empty.dir}`, ...meshward('capture')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^meshward capture: no packet-filter back end found: .*iptables-nft-restore, iptables-legacy-restore, iptables-restore, nft is on the PATH; nothing was changed$/m);
    } finally {
      empty.cleanup();
    }
  });

  it('--dry-run needs no privilege and changes nothing', async () => {
    const before = await tables(netns);
    const r = await runIn(netns, meshward('capture', '--dry-run', '--backend', 'nft', '--inbound-ports', '8080:15006'), { uid: PROXY_UID });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# nft -f - {3}\(IPv4, IPv6\)\ntable inet meshward\ndelete table inet meshward\n/);
    expect(r.stdout).toContain('tcp dport 8080 redirect to :15006');
    expect(await tables(netns)).toBe(before);
  });

  it('an IPv6 transaction that fails after the IPv4 one committed: IPv4 is put back as it was, exit 1', { timeout: 60_000 }, async () => {
    // An earlier capture, which must survive the failed run unchanged.
    expect((await capture(netns, ['--outbound-ports', '81'])).code).toBe(0);
    // nft can write what iptables-nft-save cannot show: a jump to a stale meshward chain from a verdict map. The
    // IPv6 transaction's removal of that chain fails in the kernel (the chain is in use), after IPv4's committed.
    const stale = await runIn(netns, ['nft', '-f', '-'], {
      input: 'table ip6 nat {\n chain MESHWARD_STALE {\n }\n chain OUTPUT {\n  ip6 daddr vmap { 2001:db8::2 : jump MESHWARD_STALE }\n }\n}\n',
    });
    expect(stale.code, stale.stderr).toBe(0);
    const before = await tables(netns);
    try {
      const r = await capture(netns, []);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^meshward capture: ip6tables-nft-restore failed: .*MESHWARD_STALE.*; the IPv4 rules installed a moment before were put back as they were, so nothing was changed$/m);
      expect(await tables(netns)).toBe(before);
      expect(before).toContain('--dport 81 -j REDIRECT --to-ports 15001');
    } finally {
      await runIn(netns, ['nft', 'delete', 'table', 'ip6', 'nat']);
      await capture(netns, ['--clean']);
    }
  });
});
