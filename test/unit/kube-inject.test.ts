import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sidecarConfigSchema } from '../../src/config/index.js';
import { parse } from 'yaml';
import { injectSidecar, ManifestError, type JsonObject } from '../../src/kube/index.js';
import { protocolOfPortName } from '../../src/kube/app-port.js';
import { SIDECAR_NODE_OPTIONS } from '../../src/kube/sidecar-container.js';
import { fixtureDocuments, OPTIONS } from '../helpers/kube.js';
import { kubernetesSchemaErrors } from '../helpers/kube-schema.js';

type Container = { name: string; ports?: { name?: string; containerPort: number }[]; restartPolicy?: string; [k: string]: unknown };
type Volume = { name: string; projected?: { sources: Record<string, { audience?: string; expirationSeconds?: number; name?: string }>[] }; emptyDir?: unknown };
type PodTemplate = { metadata?: { annotations?: Record<string, string> }; spec: { containers: Container[]; initContainers?: Container[]; volumes?: Volume[] } };

const byKind = (kind: string) => structuredClone(fixtureDocuments('workloads.yaml').find((d) => d.kind === kind)!);

/** The pod template of a workload, wherever its kind keeps it. */
function podOf(manifest: JsonObject): PodTemplate {
  const m = manifest as { kind: string; spec: { template: PodTemplate; jobTemplate: { spec: { template: PodTemplate } } } };
  if (m.kind === 'Pod') return manifest as unknown as PodTemplate;
  if (m.kind === 'CronJob') return m.spec.jobTemplate.spec.template;
  return m.spec.template;
}

function sidecarConfig(pod: PodTemplate): Record<string, unknown> & { identity: { ca: Record<string, string> }; inbound?: Record<string, string>; outbound: { routes: unknown[] } } {
  return parse(pod.metadata!.annotations!['meshward.io/sidecar-config']!);
}

function thrown(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

describe('injectSidecar: every workload kind', () => {
  // The app's one port, as the sidecar's inbound listener reaches it; its name says what it speaks (ledger's is "grpc").
  const cases: [kind: string, spiffeId: string, app: string | undefined][] = [
    ['Pod', 'spiffe://cluster.local/ns/tools/sa/default', 'http://127.0.0.1:9000'],
    ['StatefulSet', 'spiffe://cluster.local/ns/shop/sa/ledger', 'h2c://127.0.0.1:7443'],
    ['DaemonSet', 'spiffe://cluster.local/ns/ops/sa/default', 'http://127.0.0.1:9100'],
    ['ReplicaSet', 'spiffe://cluster.local/ns/default/sa/default', 'http://127.0.0.1:3000'],
    ['Job', 'spiffe://cluster.local/ns/shop/sa/migrator', undefined],
    ['CronJob', 'spiffe://cluster.local/ns/shop/sa/default', undefined],
  ];

  it.each(cases)('%s gets the sidecar, its volumes and its config (%s)', (kind, spiffeId, app) => {
    const appPort = app === undefined ? undefined : Number(app.slice(app.lastIndexOf(':') + 1));
    const input = byKind(kind);
    const before = structuredClone(input);
    const { changed, manifest } = injectSidecar(input, OPTIONS);
    expect(changed).toBe(true);
    expect(input).toEqual(before);

    const pod = podOf(manifest);
    const [init, sidecar] = pod.spec.initContainers as [Container, Container];
    // Capture first: the pod's only container that runs as root, with NET_ADMIN and NET_RAW and nothing else.
    expect(init).toEqual({
      name: 'meshward-init',
      image: OPTIONS.image,
      imagePullPolicy: 'IfNotPresent',
      args: ['capture', '--inbound-ports', '*:15006', '--exclude-inbound-ports', '15000', '--outbound-ports', '80', '--outbound-listener-port', '15001', '--proxy-uid', '1337'],
      env: [{ name: 'XTABLES_LOCKFILE', value: '/var/run/meshward/xtables.lock' }],
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '1', memory: '128Mi' } },
      securityContext: {
        runAsNonRoot: false,
        runAsUser: 0,
        runAsGroup: 0,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumeMounts: [{ name: 'meshward-run', mountPath: '/var/run/meshward' }],
    });
    expect(sidecar).toMatchObject({
      name: 'meshward-sidecar',
      image: OPTIONS.image,
      restartPolicy: 'Always',
      args: ['sidecar', '--config', '/etc/meshward/sidecar.yaml'],
      env: [
        { name: 'TMPDIR', value: '/var/run/meshward' },
        { name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' },
      ],
      securityContext: {
        runAsNonRoot: true,
        // The proxy UID, whose connections capture lets pass.
        runAsUser: 1337,
        runAsGroup: 1337,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      readinessProbe: { httpGet: { path: '/readyz', port: 'meshward-admin' } },
      livenessProbe: { httpGet: { path: '/healthz', port: 'meshward-admin' } },
    });
    // The app's own containers are untouched.
    expect(pod.spec.containers).toEqual(podOf(before).spec.containers);

    const token = pod.spec.volumes!.find((v) => v.name === 'meshward-token')!;
    expect(token.projected!.sources[0]!.serviceAccountToken).toEqual({ audience: 'meshward-ca', expirationSeconds: 600, path: 'token' });
    const configSources = pod.spec.volumes!.find((v) => v.name === 'meshward-config')!.projected!.sources;
    expect(configSources.map((s) => s.configMap?.name).filter(Boolean)).toEqual(appPort ? ['meshward-trust-bundle', 'meshward-policy'] : ['meshward-trust-bundle']);
    expect(pod.spec.volumes!.find((v) => v.name === 'meshward-run')!.emptyDir).toBeDefined();

    const config = sidecarConfig(pod);
    // What injection writes is a config the sidecar itself accepts.
    const accepted = sidecarConfigSchema.safeParse(config);
    expect(accepted.error?.issues).toBeUndefined();
    expect(config.trustDomain).toBe('cluster.local');
    expect(config.identity.ca).toEqual({
      address: OPTIONS.caAddress,
      bundle: '/etc/meshward/bundle.pem',
      spiffeId,
      token: 'file:/var/run/secrets/meshward/token',
      ttl: '1h',
      // The config's own directory is a read-only volume: the SVID is kept on the pod's emptyDir.
      stateDir: '/var/run/meshward/state',
    });
    if (appPort === undefined) {
      expect(config.inbound).toBeUndefined();
      expect(sidecar.ports!.map((p) => p.name)).toEqual(['meshward-admin']);
      expect(pod.metadata!.annotations!['meshward.io/inbound']).toBeUndefined();
    } else {
      expect(config.inbound).toEqual({ listen: '0.0.0.0:15006', app, policy: '/etc/meshward/policy.yaml' });
      expect(sidecar.ports!.map((p) => [p.name, p.containerPort])).toEqual([['meshward-in', 15006], ['meshward-admin', 15000]]);
      expect(pod.metadata!.annotations!['meshward.io/inbound']).toBe(`15006 -> ${appPort}`);
    }
  });

  it('puts capture, then the sidecar, first among existing init containers', () => {
    const input = byKind('StatefulSet');
    podOf(input).spec.initContainers = [{ name: 'schema', image: 'example.org/schema:1' }];
    const names = podOf(injectSidecar(input, OPTIONS).manifest).spec.initContainers!.map((c) => c.name);
    expect(names).toEqual(['meshward-init', 'meshward-sidecar', 'schema']);
  });

  it('copies outbound routes from the annotation into the config', () => {
    const config = sidecarConfig(podOf(injectSidecar(byKind('CronJob'), OPTIONS).manifest));
    expect(config.outbound).toEqual({
      listen: '127.0.0.1:15001',
      routes: [{ host: 'orders', address: 'orders.shop.svc:15006', spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders' }],
    });
  });

  it('every injected workload matches the Kubernetes schema', async () => {
    const objects = fixtureDocuments('workloads.yaml').map((d, i) => ({ label: `workloads.yaml #${i + 1} injected`, object: injectSidecar(d, OPTIONS).manifest }));
    expect(await kubernetesSchemaErrors(objects)).toEqual([]);
  });
});

describe('injectSidecar: what it leaves alone', () => {
  it('passes unknown kinds through untouched, including a same-named kind in another API group', () => {
    const configMap = byKind('ConfigMap');
    expect(injectSidecar(configMap, OPTIONS)).toEqual({ changed: false, manifest: configMap });
    const foreign = { ...byKind('Job'), apiVersion: 'example.com/v1' };
    expect(injectSidecar(foreign, OPTIONS).changed).toBe(false);
  });

  it('honours meshward.io/inject: "false" on the workload or on its pod template', () => {
    expect(injectSidecar(byKind('Deployment'), OPTIONS).changed).toBe(false);
    const job = byKind('Job');
    podOf(job).metadata = { annotations: { 'meshward.io/inject': 'false' } };
    expect(injectSidecar(job, OPTIONS).changed).toBe(false);
  });

  it('is idempotent: injecting the output again changes nothing', () => {
    for (const doc of fixtureDocuments('workloads.yaml')) {
      const once = injectSidecar(doc, OPTIONS).manifest;
      const twice = injectSidecar(once, OPTIONS);
      expect(twice.changed).toBe(false);
      expect(twice.manifest).toEqual(once);
    }
  });

  it('treats a meshward-sidecar among regular containers as already injected', () => {
    const pod = byKind('Pod');
    podOf(pod).spec.containers.push({ name: 'meshward-sidecar', image: 'x' });
    expect(injectSidecar(pod, OPTIONS).changed).toBe(false);
  });
});

describe('injectSidecar: List', () => {
  it('injects every workload item and leaves the others as they are', () => {
    const [list] = fixtureDocuments('list.yaml');
    const { changed, manifest } = injectSidecar(list!, OPTIONS);
    expect(changed).toBe(true);
    const [deployment, service] = (manifest as { items: JsonObject[] }).items;
    expect(podOf(deployment!).spec.initContainers!.map((c) => c.name)).toEqual(['meshward-init', 'meshward-sidecar']);
    expect(sidecarConfig(podOf(deployment!)).identity.ca.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/orders');
    expect(service).toEqual((list as { items: JsonObject[] }).items[1]);
  });

  it('names the item in an error', () => {
    const [list] = fixtureDocuments('list.yaml');
    const items = (list as { items: JsonObject[] }).items;
    (podOf(items[0]!).spec as { hostNetwork?: boolean }).hostNetwork = true;
    expect(thrown(() => injectSidecar(list!, OPTIONS)).message).toMatch(/^items\[0\]\.spec\.template\.spec\.hostNetwork: a hostNetwork pod/);
  });
});

describe('injectSidecar: namespace and identity', () => {
  it('uses the namespace an admission request names over the document\'s', () => {
    const config = sidecarConfig(podOf(injectSidecar(byKind('StatefulSet'), { ...OPTIONS, namespace: 'prod' }).manifest));
    expect(config.identity.ca.spiffeId).toBe('spiffe://cluster.local/ns/prod/sa/ledger');
  });

  it('uses defaultNamespace only where the document names none', () => {
    const rs = sidecarConfig(podOf(injectSidecar(byKind('ReplicaSet'), { ...OPTIONS, defaultNamespace: 'staging' }).manifest));
    expect(rs.identity.ca.spiffeId).toBe('spiffe://cluster.local/ns/staging/sa/default');
    const sts = sidecarConfig(podOf(injectSidecar(byKind('StatefulSet'), { ...OPTIONS, defaultNamespace: 'staging' }).manifest));
    expect(sts.identity.ca.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/ledger');
  });
});

describe('injectSidecar: app port', () => {
  it('follows meshward.io/app-port by number or by port name', () => {
    const sts = byKind('StatefulSet');
    const pod = podOf(sts);
    pod.spec.containers[0]!.ports!.push({ name: 'metrics', containerPort: 9090 });
    pod.metadata!.annotations = { 'meshward.io/app-port': 'metrics' };
    expect(sidecarConfig(podOf(injectSidecar(sts, OPTIONS).manifest)).inbound!.app).toBe('http://127.0.0.1:9090');
    pod.metadata!.annotations = { 'meshward.io/app-port': '7443' };
    expect(sidecarConfig(podOf(injectSidecar(sts, OPTIONS).manifest)).inbound!.app).toBe('h2c://127.0.0.1:7443');
    pod.metadata!.annotations = { 'meshward.io/app-port': '7000' };
    expect(sidecarConfig(podOf(injectSidecar(sts, OPTIONS).manifest)).inbound!.app).toBe('http://127.0.0.1:7000');
  });

  it('refuses, naming the path, what would collide with the sidecar', () => {
    const port = byKind('Pod');
    podOf(port).spec.containers[0]!.ports = [{ containerPort: 15006 }];
    expect(thrown(() => injectSidecar(port, OPTIONS)).message).toBe('spec.containers[0].ports[0].containerPort: port 15006 is used by the meshward sidecar; move the app to another port');

    const name = byKind('Pod');
    podOf(name).spec.containers[0]!.ports = [{ name: 'meshward-in', containerPort: 8080 }];
    expect(thrown(() => injectSidecar(name, OPTIONS)).message).toMatch(/^spec\.containers\[0\]\.ports\[0\]\.name: the port name "meshward-in" is reserved/);

    const volume = byKind('Deployment');
    delete (volume.metadata as { annotations?: unknown }).annotations;
    podOf(volume).spec.volumes = [{ name: 'data' }, { name: 'meshward-run', emptyDir: {} }];
    expect(thrown(() => injectSidecar(volume, OPTIONS)).message).toMatch(/^spec\.template\.spec\.volumes\[1\]\.name: the volume name "meshward-run" is reserved/);

    const missing = byKind('StatefulSet');
    podOf(missing).metadata!.annotations = { 'meshward.io/app-port': 'admin' };
    expect(thrown(() => injectSidecar(missing, OPTIONS)).message).toBe('spec.template.metadata.annotations.meshward.io/app-port: no containerPort is named "admin"');
  });

  it('says what each port speaks by its name, as Istio\'s users name ports', () => {
    const names = ['http', 'http-api', undefined, 'grpc', 'grpc-orders', 'GRPC', 'grpc-web', 'http2', 'h2c-x', 'tcp', 'tcp-redis', 'redis', 'tls', 'https', 'metrics'];
    expect(names.map((n) => [n, protocolOfPortName(n)])).toEqual([
      ['http', 'http'],
      ['http-api', 'http'],
      [undefined, 'http'],
      ['grpc', 'h2c'],
      ['grpc-orders', 'h2c'],
      ['GRPC', 'h2c'],
      ['grpc-web', 'http'],
      ['http2', 'h2c'],
      ['h2c-x', 'h2c'],
      ['tcp', 'tcp'],
      ['tcp-redis', 'tcp'],
      ['redis', 'tcp'],
      ['tls', 'tcp'],
      ['https', 'tcp'],
      ['metrics', 'http'],
    ]);
  });

  it('refuses a malformed outbound-routes annotation, naming the route', () => {
    const cron = byKind('CronJob');
    podOf(cron).metadata!.annotations!['meshward.io/outbound-routes'] = '[{"host": "orders", "address": "orders.shop.svc:15006", "spiffeId": "spiffe:/nope"}]';
    expect(thrown(() => injectSidecar(cron, OPTIONS)).message).toMatch(/^spec\.jobTemplate\.spec\.template\.metadata\.annotations\.meshward\.io\/outbound-routes\[0\]\.spiffeId: "spiffe:\/nope" is not a SPIFFE ID/);
  });

  it('refuses a workload without its pod template', () => {
    const cron = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x' }, spec: { schedule: '* * * * *' } };
    expect(thrown(() => injectSidecar(cron, OPTIONS)).message).toBe('spec.jobTemplate: is missing: a CronJob keeps its pod template at spec.jobTemplate.spec.template');
    expect(thrown(() => injectSidecar({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: {} }, OPTIONS)).message).toBe('spec.template: is missing: a Deployment keeps its pod template at spec.template');
  });
});

describe('injectSidecar: capture', () => {
  const annotated = (annotations: Record<string, string>) => {
    const sts = byKind('StatefulSet');
    podOf(sts).metadata!.annotations = annotations;
    return sts;
  };
  const initArgs = (annotations: Record<string, string>) => podOf(injectSidecar(annotated(annotations), OPTIONS).manifest).spec.initContainers![0]!.args as string[];
  const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

  it('takes the ports to capture or exclude from annotations; the admin port is always excluded', () => {
    const args = initArgs({
      'meshward.io/capture-inbound-ports': '7443',
      'meshward.io/capture-exclude-inbound-ports': '9090, 9091',
      'meshward.io/capture-outbound-ports': '80,8080',
      'meshward.io/capture-exclude-outbound-cidrs': '10.96.0.0/12',
    });
    expect(args).toEqual(['capture', '--inbound-ports', '7443:15006', '--exclude-inbound-ports', '9090,9091,15000', '--outbound-ports', '80,8080', '--outbound-listener-port', '15001', '--exclude-outbound-cidrs', '10.96.0.0/12', '--proxy-uid', '1337']);
    expect(flag(initArgs({ 'meshward.io/capture-exclude-inbound-ports': '15000' }), '--exclude-inbound-ports')).toBe('15000');
  });

  it('leaves capture out with meshward.io/capture: "false" (a CNI plugin does it); the sidecar still runs as the proxy UID', () => {
    const pod = podOf(injectSidecar(annotated({ 'meshward.io/capture': 'false' }), OPTIONS).manifest);
    expect(pod.spec.initContainers!.map((c) => c.name)).toEqual(['meshward-sidecar']);
    expect(pod.spec.initContainers![0]!.securityContext).toMatchObject({ runAsUser: 1337 });
    expect(injectSidecar(annotated({ 'meshward.io/capture': 'true' }), OPTIONS).changed).toBe(true);
  });

  it('injected with and without capture, and with every annotation, the output matches the Kubernetes schema', async () => {
    const objects = [
      annotated({ 'meshward.io/capture': 'false' }),
      annotated({ 'meshward.io/capture-inbound-ports': '7443', 'meshward.io/capture-exclude-outbound-cidrs': '10.0.0.0/8,fd00::/8', 'meshward.io/capture-outbound-ports': '*' }),
    ].map((d, i) => ({ label: `capture variant ${i + 1}`, object: injectSidecar(d, OPTIONS).manifest }));
    expect(await kubernetesSchemaErrors(objects)).toEqual([]);
  });

  it.each<[string, Record<string, string>, string]>([
    ['a switch that is not true or false', { 'meshward.io/capture': 'no' }, 'spec.template.metadata.annotations.meshward.io/capture: must be "true" or "false"'],
    ['a port that is not one', { 'meshward.io/capture-outbound-ports': '80,http' }, 'spec.template.metadata.annotations.meshward.io/capture-outbound-ports: "http" is not a port from 1 to 65535'],
    ['a block that is not one', { 'meshward.io/capture-exclude-outbound-cidrs': '10.0.0.0/40' }, 'spec.template.metadata.annotations.meshward.io/capture-exclude-outbound-cidrs: "10.0.0.0/40" is not an IPv4 or IPv6 CIDR block (ADDRESS/PREFIX)'],
    ['a listener the sidecar does not give that port', { 'meshward.io/capture-inbound-ports': '7443:15007' }, "spec.template.metadata.annotations.meshward.io/capture-inbound-ports: the injected sidecar's inbound listener for port 7443 is 15006; 15007 is not it"],
    ['the rest to a listener other than the first', { 'meshward.io/capture-inbound-ports': '7443,*:15007' }, "spec.template.metadata.annotations.meshward.io/capture-inbound-ports: every other port goes to the injected sidecar's first inbound listener, 15006; 15007 is not it"],
    ['the admin port captured', { 'meshward.io/capture-inbound-ports': '7443,15000' }, 'spec.template.metadata.annotations.meshward.io/capture-inbound-ports: port 15000 is the sidecar\'s admin port, which the kubelet probes; it cannot be captured'],
    ['a port both captured and excluded', { 'meshward.io/capture-inbound-ports': '7443', 'meshward.io/capture-exclude-inbound-ports': '7443' }, 'spec.template.metadata.annotations.meshward.io/capture-exclude-inbound-ports: port 7443 is also listed to be captured'],
  ])('refuses %s, naming the annotation', (_what, annotations, message) => {
    expect(thrown(() => injectSidecar(annotated(annotations), OPTIONS)).message).toBe(message);
  });

  it('refuses a kubelet probe of a captured port, by number or name and of any kind; an excluded port is fine', () => {
    const probed = (probe: Record<string, unknown>, annotations: Record<string, string> = {}) => {
      const sts = annotated(annotations);
      const app = podOf(sts).spec.containers[0]!;
      app.ports!.push({ name: 'health', containerPort: 8081 });
      Object.assign(app, probe);
      return sts;
    };
    const message = (port: number) => `capture would send the kubelet's probe of port ${port} to the sidecar's mTLS listener, where it fails; serve the probe on a port of its own listed in meshward.io/capture-exclude-inbound-ports, or set meshward.io/capture: "false"`;
    expect(thrown(() => injectSidecar(probed({ readinessProbe: { httpGet: { path: '/ready', port: 7443 } } }), OPTIONS)).message).toBe(`spec.template.spec.containers[0].readinessProbe.httpGet.port: ${message(7443)}`);
    expect(thrown(() => injectSidecar(probed({ livenessProbe: { tcpSocket: { port: 'health' } } }), OPTIONS)).message).toBe(`spec.template.spec.containers[0].livenessProbe.tcpSocket.port: ${message(8081)}`);
    expect(thrown(() => injectSidecar(probed({ startupProbe: { grpc: { port: 8081 } } }), OPTIONS)).message).toBe(`spec.template.spec.containers[0].startupProbe.grpc.port: ${message(8081)}`);
    expect(injectSidecar(probed({ livenessProbe: { httpGet: { path: '/healthz', port: 'health' } } }, { 'meshward.io/capture-exclude-inbound-ports': '8081' }), OPTIONS).changed).toBe(true);
    expect(injectSidecar(probed({ livenessProbe: { httpGet: { path: '/healthz', port: 8081 } } }, { 'meshward.io/capture-inbound-ports': '7443' }), OPTIONS).changed).toBe(true);
    expect(injectSidecar(probed({ readinessProbe: { httpGet: { path: '/ready', port: 7443 } } }, { 'meshward.io/capture': 'false' }), OPTIONS).changed).toBe(true);
    expect(injectSidecar(probed({ readinessProbe: { exec: { command: ['true'] } } }), OPTIONS).changed).toBe(true);
  });

  it('refuses an app container that runs as the proxy UID, set on the container or on the pod', () => {
    const own = byKind('StatefulSet');
    podOf(own).spec.containers[0]!.securityContext = { runAsUser: 1337 };
    expect(thrown(() => injectSidecar(own, OPTIONS)).message).toBe('spec.template.spec.containers[0].securityContext.runAsUser: UID 1337 is the meshward sidecar\'s, whose connections capture lets pass; run the app as another UID');
    const pod = byKind('StatefulSet');
    (podOf(pod).spec as { securityContext?: unknown }).securityContext = { runAsUser: 1337 };
    expect(thrown(() => injectSidecar(pod, OPTIONS)).message).toMatch(/^spec\.template\.spec\.securityContext\.runAsUser: UID 1337 is the meshward sidecar's/);
    podOf(pod).spec.containers[0]!.securityContext = { runAsUser: 1000 };
    expect(injectSidecar(pod, OPTIONS).changed).toBe(true);
  });

  it('refuses a container already named meshward-init', () => {
    const sts = byKind('StatefulSet');
    podOf(sts).spec.initContainers = [{ name: 'meshward-init', image: 'x' }];
    expect(thrown(() => injectSidecar(sts, OPTIONS)).message).toBe('spec.template.spec.initContainers[0].name: the container name "meshward-init" is reserved for meshward');
  });
});

describe('injectSidecar: an app with several ports', () => {
  /** orders: HTTP on 8080, gRPC on 9090, a health port 8081 that capture leaves alone. */
  const orders = (annotations: Record<string, string> = {}) => {
    const sts = byKind('StatefulSet');
    const pod = podOf(sts);
    pod.metadata!.annotations = { 'meshward.io/capture-exclude-inbound-ports': '8081', ...annotations };
    pod.spec.containers[0]!.ports = [
      { name: 'http', containerPort: 8080 },
      { name: 'grpc', containerPort: 9090 },
      { name: 'health', containerPort: 8081 },
    ];
    return sts;
  };
  const injected = (annotations: Record<string, string> = {}) => podOf(injectSidecar(orders(annotations), OPTIONS).manifest);
  const initArgs = (pod: PodTemplate) => pod.spec.initContainers![0]!.args as string[];

  it('gives each app port an inbound listener of its own, and capture sends each port to its listener and the rest to the first', () => {
    const pod = injected();
    const config = sidecarConfig(pod);
    expect(config.inbound).toEqual([
      { listen: '0.0.0.0:15006', app: 'http://127.0.0.1:8080', policy: '/etc/meshward/policy.yaml' },
      { listen: '0.0.0.0:15007', app: 'h2c://127.0.0.1:9090', policy: '/etc/meshward/policy.yaml' },
    ]);
    expect(sidecarConfigSchema.safeParse(config).error?.issues).toBeUndefined();
    const [init, sidecar] = pod.spec.initContainers as [Container, Container];
    expect(sidecar.ports!.map((p) => [p.name, p.containerPort])).toEqual([['meshward-in', 15006], ['meshward-in-2', 15007], ['meshward-admin', 15000]]);
    expect(pod.metadata!.annotations!['meshward.io/inbound']).toBe('15006 -> 8080, 15007 -> 9090');
    expect(init.args).toEqual(['capture', '--inbound-ports', '8080:15006,9090:15007,*:15006', '--exclude-inbound-ports', '8081,15000', '--outbound-ports', '80', '--outbound-listener-port', '15001', '--proxy-uid', '1337']);
  });

  it('follows the annotations: the app ports named, or only the ports captured', () => {
    const named = injected({ 'meshward.io/app-port': 'grpc, 8080' });
    expect(sidecarConfig(named).inbound).toMatchObject([{ listen: '0.0.0.0:15006', app: 'h2c://127.0.0.1:9090' }, { listen: '0.0.0.0:15007', app: 'http://127.0.0.1:8080' }]);
    expect(initArgs(named).slice(1, 3)).toEqual(['--inbound-ports', '9090:15006,8080:15007,*:15006']);

    const listed = injected({ 'meshward.io/capture-inbound-ports': '8080,9090' });
    expect(sidecarConfig(listed).inbound).toMatchObject([{ listen: '0.0.0.0:15006' }, { listen: '0.0.0.0:15007' }]);
    expect(initArgs(listed).slice(1, 3)).toEqual(['--inbound-ports', '8080:15006,9090:15007']);

    // One port captured: one listener, exactly as for an app with one port.
    const one = injected({ 'meshward.io/capture-inbound-ports': '9090' });
    expect(sidecarConfig(one).inbound).toEqual({ listen: '0.0.0.0:15006', app: 'h2c://127.0.0.1:9090', policy: '/etc/meshward/policy.yaml' });
    expect(initArgs(one).slice(1, 3)).toEqual(['--inbound-ports', '9090:15006']);
    const excluded = injected({ 'meshward.io/capture-exclude-inbound-ports': '8081,9090' });
    expect(sidecarConfig(excluded).inbound).toMatchObject({ listen: '0.0.0.0:15006', app: 'http://127.0.0.1:8080' });
    expect(initArgs(excluded).slice(1, 3)).toEqual(['--inbound-ports', '*:15006']);

    // Without capture (a CNI plugin's), every declared port gets its listener; Services point at meshward-in-N.
    const cni = injected({ 'meshward.io/capture': 'false' });
    expect(cni.spec.initContainers!.map((c) => c.name)).toEqual(['meshward-sidecar']);
    expect(sidecarConfig(cni).inbound).toMatchObject([{ app: 'http://127.0.0.1:8080' }, { app: 'h2c://127.0.0.1:9090' }, { listen: '0.0.0.0:15008', app: 'http://127.0.0.1:8081' }]);
  });

  it('refuses a port or port name the next listeners need, naming the path', () => {
    const port = orders();
    podOf(port).spec.containers[0]!.ports!.push({ containerPort: 15007 });
    expect(thrown(() => injectSidecar(port, OPTIONS)).message).toBe(
      "spec.template.spec.containers[0].ports[3].containerPort: port 15007 is the meshward sidecar's inbound listener for app port 9090; move the app to another one",
    );
    const name = orders();
    podOf(name).spec.containers[0]!.ports![2]!.name = 'meshward-in-2';
    expect(thrown(() => injectSidecar(name, OPTIONS)).message).toBe(
      "spec.template.spec.containers[0].ports[2].name: the port name \"meshward-in-2\" is the meshward sidecar's inbound listener for app port 9090; move the app to another one",
    );
    expect(thrown(() => injectSidecar(orders({ 'meshward.io/app-port': '8080,15007' }), OPTIONS)).message).toBe(
      "spec.template.metadata.annotations.meshward.io/app-port: port 15007 is the meshward sidecar's inbound listener for app port 15007; move the app to another one",
    );
  });

  it('the injected pod, with and without capture, matches the Kubernetes schema', async () => {
    const objects = [orders(), orders({ 'meshward.io/capture': 'false' })].map((d, i) => ({ label: `several ports ${i + 1}`, object: injectSidecar(d, OPTIONS).manifest }));
    expect(await kubernetesSchemaErrors(objects)).toEqual([]);
  });
});

describe('the injected sidecar\'s NODE_OPTIONS', () => {
  // Young-generation churn with survivors, as requests in flight make it; prints the young generation's size.
  const churn = `const ring = new Array(200000); for (let i = 0; i < 1.5e6; i++) ring[i % ring.length] = { i, a: [i] };
    process.stdout.write(String(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));`;
  const youngBytes = async (nodeOptions: string) =>
    Number((await promisify(execFile)(process.execPath, ['-e', churn], { env: { ...process.env, NODE_OPTIONS: nodeOptions } })).stdout);

  it('is accepted by the Node.js the image ships (a refused option would stop the container) and caps the young generation', async () => {
    // A V8 option NODE_OPTIONS does not allow makes node exit before running anything.
    const version = await promisify(execFile)(process.execPath, ['bin/meshward.js', '--version'], { env: { ...process.env, NODE_OPTIONS: SIDECAR_NODE_OPTIONS } });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const [capped, uncapped] = await Promise.all([youngBytes(SIDECAR_NODE_OPTIONS), youngBytes('')]);
    expect(capped).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(uncapped).toBeGreaterThan(capped);
  });
});
