import { readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { httpRequest, makeMesh, readJsonLines, runPair, runSidecar, WEB_ID, type Mesh } from '../helpers/sidecar.js';

// Traces exported by OTLP/HTTP to a collector stand-in (a real HTTP server that keeps what it is sent), and the
// log level from config and environment, all through real sidecar processes.

interface Export {
  contentType: string;
  body: Buffer;
}

/** Takes OTLP/HTTP trace exports on /v1/traces and keeps them. */
async function startCollector(): Promise<{ url: string; exports: Export[]; close: () => void }> {
  const exports: Export[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') exports.push({ contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': String(req.headers['content-type'] ?? 'application/json') }).end(req.headers['content-type'] === 'application/json' ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exports, close: () => server.close() };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
  status?: { code?: number };
  service: string;
}

/** The spans of OTLP/JSON export bodies, each with its resource's service.name. */
function spansOf(exports: Export[]): OtlpSpan[] {
  const spans: OtlpSpan[] = [];
  for (const e of exports) {
    const body = JSON.parse(e.body.toString()) as {
      resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: Omit<OtlpSpan, 'service'>[] }> }>;
    };
    for (const rs of body.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, service });
    }
  }
  return spans;
}

function attr(span: OtlpSpan, key: string): string | number | undefined {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  return value.stringValue ?? Number(value.intValue);
}

const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 };
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('sidecar: spans for every hop, exported by OTLP when OTEL_* says so', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let app: http.Server;
  const seen: IncomingHttpHeaders[] = [];
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let spans: OtlpSpan[];
  let allowedAppHeaders: IncomingHttpHeaders;

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      seen.push(req.headers);
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    collector = await startCollector();
    mesh = await makeMesh(dir);
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' };
    const { orders, web } = await runPair(mesh, { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, env, ordersExtra: { audit: { path: join(dir, 'audit.jsonl') } } });
    const viaWeb = (path: string) => httpRequest(web.outbound!, path, { headers: { host: 'orders', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
    expect((await viaWeb('/api/orders/7?access_token=do-not-export')).status).toBe(200);
    allowedAppHeaders = seen[0]!;
    expect((await viaWeb('/api/admin')).status).toBe(403);
    // SIGTERM flushes what is buffered before exit.
    expect(await web.stop()).toBe(0);
    expect(await orders.stop()).toBe(0);
    spans = spansOf(collector.exports);
  });

  afterAll(() => {
    app?.close();
    collector?.close();
    cleanup();
  });

  it('exports OTLP/JSON with the default service name', () => {
    expect(collector.exports.length).toBeGreaterThan(0);
    for (const e of collector.exports) expect(e.contentType).toBe('application/json');
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['meshward-sidecar']));
  });

  it('hangs every span of the allowed request under the caller span, hop by hop, and tells the app its parent', () => {
    const allowedTrace = spans.filter((s) => s.traceId === TRACE_ID && attr(s, 'url.path') === '/api/orders/7');
    const outbound = allowedTrace.find((s) => s.name === 'outbound GET')!;
    expect(outbound).toMatchObject({ kind: SPAN_KIND.SERVER, parentSpanId: CALLER_SPAN });
    expect(attr(outbound, 'http.response.status_code')).toBe(200);
    const all = spans.filter((s) => s.traceId === TRACE_ID);
    const childrenOf = (parent: OtlpSpan) => all.filter((s) => s.parentSpanId === parent.spanId);
    const webUpstream = childrenOf(outbound);
    expect(webUpstream.map((s) => [s.name, s.kind])).toEqual([['upstream GET', SPAN_KIND.CLIENT]]);
    const inbound = childrenOf(webUpstream[0]!);
    expect(inbound.map((s) => [s.name, s.kind])).toEqual([['inbound GET', SPAN_KIND.SERVER]]);
    expect(attr(inbound[0]!, 'meshward.principal')).toBe(WEB_ID);
    expect(attr(inbound[0]!, 'meshward.decision')).toBe('allow');
    expect(attr(inbound[0]!, 'meshward.rule')).toBe('web-reads-orders');
    const underInbound = childrenOf(inbound[0]!);
    expect(underInbound.map((s) => s.name).sort()).toEqual(['authorize', 'upstream GET']);
    const appSpan = underInbound.find((s) => s.name === 'upstream GET')!;
    expect(allowedAppHeaders.traceparent).toBe(`00-${TRACE_ID}-${appSpan.spanId}-01`);
  });

  it('records a denial on the inbound span, with no upstream call', () => {
    const inbound = spans.find((s) => s.name === 'inbound GET' && attr(s, 'url.path') === '/api/admin')!;
    expect(inbound.traceId).toBe(TRACE_ID);
    expect(attr(inbound, 'meshward.decision')).toBe('deny');
    expect(attr(inbound, 'http.response.status_code')).toBe(403);
    const children = spans.filter((s) => s.parentSpanId === inbound.spanId);
    expect(children.map((s) => s.name)).toEqual(['authorize']);
    expect(seen).toHaveLength(1);
  });

  it('never exports a query string, nor writes one to the audit log', () => {
    const text = collector.exports.map((e) => e.body.toString()).join('\n');
    expect(text).toContain('/api/orders/7');
    expect(text).not.toContain('do-not-export');
    const audit = readJsonLines(join(dir, 'audit.jsonl'));
    expect(audit.map((r) => [r.path, r.traceId])).toEqual([
      ['/api/orders/7', TRACE_ID],
      ['/api/admin', TRACE_ID],
    ]);
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8')).not.toContain('do-not-export');
  });
});

describe('sidecar: tracing settings from the environment', () => {
  const { dir, cleanup } = tempDir();
  let mesh: Mesh;
  let collector: Awaited<ReturnType<typeof startCollector>>;

  beforeAll(async () => {
    collector = await startCollector();
    mesh = await makeMesh(dir);
  });

  afterAll(() => {
    collector?.close();
    cleanup();
  });

  /** An outbound-only sidecar; a request to a host with no route is answered 502 by the sidecar itself. */
  async function outboundOnly(name: string, env: NodeJS.ProcessEnv, log?: object) {
    const svid = await mesh.issue(name, WEB_ID);
    const config = {
      trustDomain: TD,
      identity: { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } },
      outbound: { listen: '127.0.0.1:0', routes: [] },
      admin: { listen: '127.0.0.1:0' },
      ...(log ? { log } : {}),
    };
    return runSidecar(dir, name, config, env);
  }

  it('exports OTLP/protobuf by default, and names the service by OTEL_SERVICE_NAME', async () => {
    const before = collector.exports.length;
    const sidecar = await outboundOnly('proto', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`, OTEL_SERVICE_NAME: 'web-sidecar' });
    const answer = await httpRequest(sidecar.outbound!, '/x', { headers: { host: 'nowhere', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } });
    expect(answer.status).toBe(502);
    expect(await sidecar.stop()).toBe(0);
    const sent = collector.exports.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent[0]!.contentType).toBe('application/x-protobuf');
    // Protobuf carries ids as raw bytes.
    const body = Buffer.concat(sent.map((e) => e.body));
    expect(body.includes(Buffer.from(TRACE_ID, 'hex'))).toBe(true);
    expect(body.includes(Buffer.from('web-sidecar'))).toBe(true);
  });

  it('exports nothing when OTEL_TRACES_EXPORTER=none, and still passes the caller trace on untouched', async () => {
    const before = collector.exports.length;
    const sidecar = await outboundOnly('off', { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_EXPORTER: 'none', OTEL_BSP_SCHEDULE_DELAY: '10' });
    expect((await httpRequest(sidecar.outbound!, '/x', { headers: { host: 'nowhere' } })).status).toBe(502);
    expect(sidecar.output()).not.toContain('tracing on');
    expect(await sidecar.stop()).toBe(0);
    expect(collector.exports.length).toBe(before);
  });

  it('refuses to start on an OTEL_* value it cannot honour, naming the variable', async () => {
    const svid = await mesh.issue('bad', WEB_ID);
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, stringify({ trustDomain: TD, identity: { files: { cert: svid.cert, key: svid.key, bundle: mesh.bundle } }, outbound: { listen: '127.0.0.1:0', routes: [] }, admin: { listen: '127.0.0.1:0' } }));
    const grpc = await runCli(['sidecar', '--config', file], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } });
    expect(grpc.code).not.toBe(0);
    expect(grpc.stderr).toContain('OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported');
    const sampler = await runCli(['sidecar', '--config', file], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_TRACES_SAMPLER: 'jaeger_remote' } });
    expect(sampler.code).not.toBe(0);
    expect(sampler.stderr).toContain('OTEL_TRACES_SAMPLER: "jaeger_remote" is not supported');
  });

  it('takes the log level from config, and MESHWARD_LOG_LEVEL over it', async () => {
    const debug = await outboundOnly('debug', { MESHWARD_LOG_LEVEL: '' }, { level: 'debug' });
    expect((await httpRequest(debug.outbound!, '/x', { headers: { host: 'nowhere' } })).status).toBe(502);
    expect(await debug.stop()).toBe(0);
    expect(debug.output()).toMatch(/"level":"debug"/);

    const loud = await outboundOnly('env-wins', { MESHWARD_LOG_LEVEL: 'info' }, { level: 'warn' });
    expect((await httpRequest(loud.outbound!, '/x', { headers: { host: 'nowhere' } })).status).toBe(502);
    expect(await loud.stop()).toBe(0);
    expect(loud.output()).toMatch(/"level":"info".*"msg":"request refused or failed"/);
    expect(loud.output()).not.toMatch(/"level":"debug"/);

    const bad = await runCli(['sidecar', '--config', debug.configFile], { env: { MESHWARD_LOG_LEVEL: 'loud' } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('MESHWARD_LOG_LEVEL: "loud" is not a log level');
  });
});
