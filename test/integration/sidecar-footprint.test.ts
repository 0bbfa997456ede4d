// A sidecar loads only what its configuration uses: every package loaded is memory in every pod (issue 12). The
// real CLI runs with a preloaded hook (helpers/loaded-packages.mjs) that lists the npm packages the process loaded.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, startHttpApp, runPair, type Mesh } from '../helpers/sidecar.js';

const HOOK = join(REPO_ROOT, 'test/helpers/loaded-packages.mjs');

describe('sidecar footprint: packages loaded', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  let appUrl: string;

  beforeAll(async () => {
    ({ server: app, url: appUrl } = await startHttpApp((_req, res) => res.end('ok')));
    mesh = await makeMesh(dir);
  });

  afterAll(() => {
    app?.close();
    cleanup();
  });

  /** Runs a pair through one request and returns the packages each sidecar loaded, once both have exited. */
  async function packagesLoaded(env: NodeJS.ProcessEnv = {}): Promise<{ orders: string[]; web: string[] }> {
    const prefix = join(dir, `loaded-${Date.now()}-`);
    const pair = await runPair(mesh, {
      app: appUrl,
      ordersExtra: { audit: { path: join(dir, 'orders-audit.jsonl') } },
      env: { ...env, NODE_OPTIONS: `--import=${HOOK}`, MESHWARD_LOADED_PACKAGES_PREFIX: prefix },
    });
    try {
      expect((await httpRequest(pair.web.outbound!, '/api/orders/1', { headers: { host: 'orders' } })).status).toBe(200);
    } finally {
      await Promise.all([pair.orders.stop(), pair.web.stop()]);
    }
    const of = (pid: number | undefined) => readFileSync(`${prefix}${pid}.txt`, 'utf8').split('\n');
    return { orders: of(pair.orders.child.pid), web: of(pair.web.child.pid) };
  }

  it('a sidecar with file identity, a policy, metrics and an audit log loads neither gRPC, the trace SDK nor an ASN.1 decoder', async () => {
    const { orders, web } = await packagesLoaded();
    // The hook works: what the sidecars do need is listed.
    expect(orders).toEqual(expect.arrayContaining(['pino', 'undici', '@opentelemetry/sdk-metrics']));
    expect(web).toEqual(expect.arrayContaining(['pino', 'undici', '@opentelemetry/sdk-metrics']));
    for (const unused of ['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', '@peculiar/x509', '@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/exporter-trace-otlp-http', 'proper-lockfile', 'ioredis']) {
      expect(orders, `orders loaded ${unused}`).not.toContain(unused);
      expect(web, `web loaded ${unused}`).not.toContain(unused);
    }
  });

  it('loads the trace SDK when the OTEL_* variables turn tracing on', async () => {
    // Sampled off: the SDK loads, and no span waits for a collector that is not there at shutdown.
    const { orders, web } = await packagesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_TRACES_SAMPLER: 'always_off' });
    expect(orders).toContain('@opentelemetry/sdk-trace');
    expect(web).toContain('@opentelemetry/sdk-trace');
  });
});
