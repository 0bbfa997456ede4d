import { generateKeyPairSync } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { makeCsr } from '../ca/index.js';
import { CAPTURE_DEFAULTS, CaptureError, dryRunBackend } from '../capture/index.js';
import { ORDERS_ID, POLICY, TRUST_DOMAIN, WEB_ID, type MeshContext, type RunningCa } from './mesh.js';
import { createPodPair, run, runIn, startIn, type Pod } from './netns.js';
import { Resources } from './resources.js';
import type { Row } from './rows.js';
import { packagePath } from '../package-root.js';

// The demo's transparent-capture step, as root: web and orders again, now as two pods (network namespaces joined
// by a veth pair), each app unchanged on its usual port, each sidecar a `meshward sidecar` process running as the
// proxy UID, and `meshward capture` run in each pod. The pods are removed as soon as the step is done.

const NODE = process.execPath;
const MESHWARD_BIN = packagePath('bin', 'meshward.js');
const PROXY_UID = CAPTURE_DEFAULTS.proxyUid;

// web's app: one plain HTTP call, its outcome as one JSON line.
const CLIENT = `fetch(process.argv[1]).then(
  async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })),
  (e) => console.log(JSON.stringify({ error: String(e.cause?.code ?? e.cause?.message ?? e.message) })),
)`;

/** Why the step cannot run here, in a few words; undefined when it can. */
export async function captureLeftOut(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not running as root (it needs network namespaces and iptables; sudo npx meshward demo shows it)';
  for (const [command, ...args] of [['ip', '-V'], ['setpriv', '--version']] as const) {
    if ((await run([command, ...args])).code === 127) return `${command} is not installed`;
  }
  try {
    dryRunBackend();
  } catch (err) {
    if (err instanceof CaptureError) return 'neither iptables nor nft is installed';
    throw err;
  }
  for (const [file, access] of [[MESHWARD_BIN, 0o004], [NODE, 0o001]] as const) {
    if (!(await openToOthers(file, access))) return `its sidecars run as UID ${PROXY_UID}, which cannot use ${file}`;
  }
  return undefined;
}

/** Whether a process of another user can reach the file (every directory up to it searchable by all) and read or run it. */
export async function openToOthers(file: string, access: number): Promise<boolean> {
  if (((await stat(file)).mode & access) === 0) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

interface Answer {
  status?: number;
  body?: string;
  error?: string;
}

async function call(pod: Pod, url: string, uid?: number): Promise<Answer> {
  const r = await runIn(pod.netns, [NODE, '-e', CLIENT, url], uid === undefined ? {} : { uid });
  try {
    return JSON.parse(r.stdout) as Answer;
  } catch {
    return { error: r.stderr.trim().split('\n').at(-1) ?? `exit status ${r.code}` };
  }
}

export interface CapturePods {
  web: Pod;
  orders: Pod;
  /** Stops the pods' processes and removes the pods. */
  remove(): Promise<void>;
}

/**
 * The two pods, their apps and sidecars started and `meshward capture` run in each, as each pod's meshward-init
 * container would. Everything is registered with the demo's resources as it starts, so that it is removed on any
 * path out.
 */
export async function startCapturePods(ctx: MeshContext, ca: RunningCa): Promise<CapturePods> {
  const local = new Resources();
  ctx.resources.add('capture pods', () => local.stopAll());
  const dir = join(ctx.dir, 'capture');
  // The sidecars run as the proxy UID: their files must be theirs, and the way to them open (not readable).
  await chmod(ctx.dir, 0o711);
  await mkdir(dir, { mode: 0o755 });
  const config = async (name: string, body: object) => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, stringify({ trustDomain: TRUST_DOMAIN, admin: { listen: '127.0.0.1:15000' }, drainTimeout: '1s', ...body }));
    return file;
  };
  await copyFile(ca.bundleFile, join(dir, 'bundle.pem'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  // SVIDs as `meshward ca issue` makes them: the CA is on this machine's loopback, which the pods cannot reach.
  const identity = async (name: string, spiffeId: string) => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const svid = await ca.authority.sign({ csr: await makeCsr(key), spiffeId, ttlSeconds: 600 }, { method: 'operator' });
    await writeFile(join(dir, `${name}.key`), key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    await chown(join(dir, `${name}.key`), PROXY_UID, PROXY_UID);
    await writeFile(join(dir, `${name}.pem`), svid.chainPem);
    return { files: { cert: `${name}.pem`, key: `${name}.key`, bundle: 'bundle.pem' } };
  };

  const pods = await createPodPair(['orders']);
  local.add('pods', () => pods.remove());
  const ordersConfig = await config('orders', {
    identity: await identity('orders', ORDERS_ID),
    inbound: { listen: `0.0.0.0:${CAPTURE_DEFAULTS.inboundListenerPort}`, app: 'http://127.0.0.1:80', policy: 'policy.yaml' },
  });
  // The route is orders's own address and port, as a Service's would be: capture takes it to orders's sidecar.
  const webConfig = await config('web', {
    identity: await identity('web', WEB_ID),
    outbound: { listen: `127.0.0.1:${CAPTURE_DEFAULTS.outboundListenerPort}`, routes: [{ host: 'orders', address: `${pods.orders.address}:80`, spiffeId: ORDERS_ID }] },
  });

  const appModule = pathToFileURL(fileURLToPath(new URL('./orders-app.js', import.meta.url))).href;
  const env = { ...process.env, MESHWARD_LOG_LEVEL: 'info' };
  const started = [
    startIn(pods.orders.netns, [NODE, '--input-type=module', '-e', `await (await import('${appModule}')).startOrdersApp({ host: '0.0.0.0', port: 80 }); console.log('ready');`], /^ready$/m),
    startIn(pods.orders.netns, [NODE, MESHWARD_BIN, 'sidecar', '--config', ordersConfig], /"msg":"sidecar ready"/, { uid: PROXY_UID, env }),
    startIn(pods.web.netns, [NODE, MESHWARD_BIN, 'sidecar', '--config', webConfig], /"msg":"sidecar ready"/, { uid: PROXY_UID, env }),
  ];
  for (const p of started) local.add('capture pod process', () => p.stop());
  await Promise.all(started.map((p) => p.ready));
  // What each pod's meshward-init container runs: orders's every port to its sidecar, web's calls to port 80.
  const captures = await Promise.all([
    runIn(pods.orders.netns, [NODE, MESHWARD_BIN, 'capture', '--exclude-inbound-ports', '15000']),
    runIn(pods.web.netns, [NODE, MESHWARD_BIN, 'capture']),
  ]);
  const failed = captures.find((c) => c.code !== 0);
  if (failed) throw new Error(failed.stderr.trim());
  return { web: pods.web, orders: pods.orders, remove: async () => void (await local.stopAll()) };
}

/**
 * web's app calls http://orders/api/orders/42 as if there were no mesh; a plain client that skips web's sidecar
 * (as UID 1337, which web's capture lets pass, as a pod without capture would) calls orders's address directly.
 */
export async function captureRows(pods: CapturePods): Promise<Row[]> {
  const plainUrl = `http://${pods.orders.address}/api/orders/42`;
  const [meshed, around] = await Promise.all([call(pods.web, 'http://orders/api/orders/42'), call(pods.web, plainUrl, PROXY_UID)]);
  const seen = (meshed.body === undefined ? {} : JSON.parse(meshed.body)) as { xfcc?: string | null };
  const uri = /URI=([^;,]+)/.exec(seen.xfcc ?? '')?.[1];
  return [
    {
      request: 'GET http://orders/api/orders/42',
      as: "web's app, unchanged",
      result: meshed.status === 200 ? '200 through both sidecars' : `${meshed.status ?? meshed.error}`,
      why: `app saw URI=${uri?.replace(`spiffe://${TRUST_DOMAIN}`, 'spiffe://…') ?? '(none)'}`,
      ok: meshed.status === 200 && uri === WEB_ID,
      expected: `200, the app seeing URI=${WEB_ID}`,
    },
    {
      request: `GET ${plainUrl}, plain`,
      as: '(no sidecar)',
      result: around.error !== undefined ? "refused: port 80 is the sidecar's" : `${around.status} from the app`,
      why: `met orders's mTLS listener (${around.error ?? 'answered'})`,
      ok: around.error !== undefined,
      expected: "no answer: capture gives orders's port 80 to its sidecar",
    },
  ];
}
