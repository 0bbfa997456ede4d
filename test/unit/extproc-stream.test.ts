// The ext_proc exchange's pure core: Envoy's header maps and attributes in, the chain's changes out, and the order of
// a Process stream's messages. Through the wire and a real child process: test/conformance/extproc.test.ts.
import { describe, expect, it } from 'vitest';
import { receivedHeaders } from '../../src/extproc/header-map.js';
import type { ProcessingRequestMessage, ProcessingResponseMessage } from '../../src/extproc/messages.js';
import { requestChanges, responseHeaderMutation } from '../../src/extproc/mutations.js';
import { ProcessStream } from '../../src/extproc/process-stream.js';
import { addressOf, hopContextOf } from '../../src/extproc/request-context.js';
import { buildExtProcChain, chainOf, type HttpFilter } from '../../src/filters/index.js';
import { extProcConfigSchema } from '../../src/config/index.js';
import { jsonReply } from '../../src/filters/local-reply.js';
import { createLogger } from '../../src/telemetry/index.js';

const raw = (headers: Record<string, string | string[]>) => ({
  headers: Object.entries(headers).flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => ({ key, rawValue: Buffer.from(v, 'latin1') }))),
});
const REQUEST = { ':method': 'GET', ':path': '/a?b=1', ':authority': 'svc.example.com', 'x-request-id': 'r-1' };

function context(headers: Record<string, string | string[]> = REQUEST, attributes?: Record<string, { stringValue?: string; numberValue?: number }>) {
  const mapped = hopContextOf(receivedHeaders(raw(headers)), attributes ? { 'envoy.filters.http.ext_proc': { fields: attributes } } : undefined);
  if (!mapped.ok) throw new Error(mapped.reason);
  return mapped.ctx;
}

describe('request_headers → HopContext', () => {
  it('reads method, path, host and the request id from the pseudo-headers and headers', () => {
    const ctx = context({ ...REQUEST, cookie: ['a=1', 'b=2'], 'content-length': '12' });
    expect(ctx.request).toMatchObject({ method: 'GET', path: '/a?b=1', host: 'svc.example.com', requestId: 'r-1' });
    expect(ctx.request.headers.cookie).toBe('a=1; b=2');
    expect(ctx.declaredBodyBytes).toBe(12);
    expect(ctx.rawHeaders.slice(0, 2)).toEqual([':method', 'GET']);
    expect(ctx.request.principal).toBeUndefined();
    expect(ctx.request.sourceIp).toBeUndefined();
  });

  it('takes a SPIFFE ID from connection.uri_san_peer_certificate, and nothing else', () => {
    expect(context(REQUEST, { 'connection.uri_san_peer_certificate': { stringValue: 'spiffe://example.org/web' } }).request.principal).toBe('spiffe://example.org/web');
    for (const other of ['https://example.org/web', 'SPIFFE://example.org/web', '']) {
      expect(context(REQUEST, { 'connection.uri_san_peer_certificate': { stringValue: other } }).request.principal).toBeUndefined();
    }
  });

  it('reads the IP of source.address in each of its spellings', () => {
    expect(['192.0.2.1:80', '[2001:db8::1]:443', '2001:db8::1', '192.0.2.1', '/run/envoy.sock', 'nonsense', undefined].map(addressOf)).toEqual([
      '192.0.2.1',
      '2001:db8::1',
      '2001:db8::1',
      '192.0.2.1',
      undefined,
      undefined,
      undefined,
    ]);
    expect(context(REQUEST, { 'source.address': { stringValue: '192.0.2.1:80' }, 'destination.port': { numberValue: 8443 } }).request).toMatchObject({
      sourceIp: '192.0.2.1',
      destinationPort: 8443,
    });
  });

  it('refuses headers without :method or :path', () => {
    expect(hopContextOf(receivedHeaders(raw({ ':path': '/' })), undefined)).toEqual({ ok: false, reason: 'request_headers has no :method' });
    expect(hopContextOf(receivedHeaders(raw({ ':method': 'GET' })), undefined)).toEqual({ ok: false, reason: 'request_headers has no :path' });
  });

  it('knows which field Envoy put the values in, and reads bytes as latin1', () => {
    expect(receivedHeaders(raw({ a: 'caf\u00e9' }))).toEqual({ raw: ['a', 'caf\u00e9'], rawValues: true });
    expect(receivedHeaders({ headers: [{ key: 'A', value: 'x' }, { key: '', value: 'dropped' }] })).toEqual({ raw: ['a', 'x'], rawValues: false });
  });
});

describe('the chain\'s changes → HeaderMutation', () => {
  it('removes every header it sets first, appends the second and later values, and always removes x-meshward-principal', () => {
    const ctx = context();
    ctx.setHeaders.push(['x-one', '1'], ['x-many', 'a'], ['x-many', 'b']);
    ctx.removeHeaders.push('x-api-key');
    const { headerMutation, clearRouteCache } = requestChanges(ctx, '/a?b=1', false);
    expect(clearRouteCache).toBe(false);
    expect(headerMutation.removeHeaders).toEqual(['x-api-key', 'x-one', 'x-many', 'x-meshward-principal']);
    expect(headerMutation.setHeaders).toEqual([
      { header: { key: 'x-one', value: '1' }, appendAction: 2 },
      { header: { key: 'x-many', value: 'a' }, append: { value: true } },
      { header: { key: 'x-many', value: 'b' }, append: { value: true } },
    ]);
  });

  it('sets :path when a filter changed the path, and has Envoy choose the route again', () => {
    const ctx = context();
    ctx.request.path = '/a';
    const { headerMutation, clearRouteCache } = requestChanges(ctx, '/a?b=1', true);
    expect(clearRouteCache).toBe(true);
    expect(headerMutation.setHeaders).toEqual([{ header: { key: ':path', rawValue: Buffer.from('/a') }, appendAction: 2 }]);
  });

  it('diffs a response\'s headers: gone, changed (removed, then set), unchanged left alone', () => {
    const before = { server: 'x', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain', etag: '"1"' };
    const after = { 'set-cookie': ['a=1', 'b=2', 'c=3'], 'content-type': 'text/plain', etag: '"2"', vary: 'Origin' };
    expect(responseHeaderMutation(before, after, false)).toEqual({
      removeHeaders: ['server', 'set-cookie', 'etag'],
      setHeaders: [
        ...['a=1', 'b=2', 'c=3'].map((value) => ({ header: { key: 'set-cookie', value }, append: { value: true } })),
        { header: { key: 'etag', value: '"2"' }, appendAction: 2 },
        { header: { key: 'vary', value: 'Origin' }, appendAction: 2 },
      ],
    });
    expect(responseHeaderMutation(before, { ...before }, false)).toBeUndefined();
  });
});

describe('a Process stream', () => {
  const logger = createLogger('test', { level: 'silent' });
  const headersMessage = (headers: Record<string, string>, endOfStream = true, kind: 'requestHeaders' | 'responseHeaders' = 'requestHeaders'): ProcessingRequestMessage => ({
    request: kind,
    [kind]: { headers: raw(headers), endOfStream },
  });
  const bodyMessage = (body: string, kind: 'requestBody' | 'responseBody'): ProcessingRequestMessage => ({ request: kind, [kind]: { body: Buffer.from(body), endOfStream: true } });

  function stream(filters: HttpFilter[]) {
    const sent: ProcessingResponseMessage[] = [];
    const process = new ProcessStream({ chain: chainOf(filters), maxBodyBytes: 1024, logger, send: (r) => sent.push(r) });
    return { process, sent, last: () => sent.at(-1) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  it('answers trailers and bodies nobody asked for unchanged, in their places', async () => {
    const { process, sent } = stream([{ name: 'noop', onResponse: () => undefined }]);
    await process.handle(headersMessage(REQUEST, false));
    await process.handle(bodyMessage('chunk', 'requestBody'));
    await process.handle({ request: 'requestTrailers', requestTrailers: {} });
    await process.handle(headersMessage({ ':status': '200' }, false, 'responseHeaders'));
    await process.handle(bodyMessage('chunk', 'responseBody'));
    await process.handle({ request: 'responseTrailers', responseTrailers: {} });
    expect(sent.map((r) => Object.keys(r)[0])).toEqual(['requestHeaders', 'requestBody', 'requestTrailers', 'responseHeaders', 'responseBody', 'responseTrailers']);
    expect([1, 2, 4, 5].map((i) => sent[i])).toEqual([{ requestBody: {} }, { requestTrailers: {} }, { responseBody: {} }, { responseTrailers: {} }]);
    expect(() => process.handle({ request: 'responseTrailers', responseTrailers: {} })).toThrow('response_trailers came out of order: expected nothing more');
    expect(process.outcome).toEqual({ decision: undefined, status: 200 });
  });

  it('refuses a request body after the request trailers, and observability mode', async () => {
    const { process } = stream([]);
    expect(() => process.handle({ ...headersMessage(REQUEST), observabilityMode: true })).toThrow('observability_mode is on');
    await process.handle(headersMessage(REQUEST, false));
    await process.handle({ request: 'requestTrailers', requestTrailers: {} });
    expect(() => process.handle(bodyMessage('late', 'requestBody'))).toThrow('request_body came out of order: expected response_headers');
  });

  it('answers 500 when a filter throws, through the response side of the filters before it', async () => {
    const { process, last } = stream([
      { name: 'tagger', onResponse: (_ctx, response) => void (response.headers['x-tag'] = 'seen') },
      {
        name: 'broken',
        onRequest: () => {
          throw new Error('boom');
        },
      },
    ]);
    await process.handle(headersMessage(REQUEST));
    const reply = last().immediateResponse;
    expect(reply.status.code).toBe(500);
    expect(JSON.parse(reply.body.toString())).toMatchObject({ error: 'internal', requestId: 'r-1' });
    expect(reply.headers.setHeaders.map((o: { header: { key: string } }) => o.header.key)).toEqual(['content-type', 'x-tag']);
  });

  it('answers 500 when a response side rejects, and its own answer when a filter changes the status', async () => {
    const failing = stream([{ name: 'broken', onResponse: () => Promise.reject(new Error('boom')) }]);
    await failing.process.handle(headersMessage(REQUEST));
    await failing.process.handle(headersMessage({ ':status': '200' }, true, 'responseHeaders'));
    expect(failing.last().immediateResponse.status.code).toBe(500);

    const teapot = stream([{ name: 'teapot', onResponse: (_ctx, response) => void (response.status = 418) }]);
    await teapot.process.handle(headersMessage(REQUEST));
    await teapot.process.handle(headersMessage({ ':status': '200', 'x-app': 'yes' }, true, 'responseHeaders'));
    expect(teapot.last().immediateResponse).toMatchObject({ status: { code: 418 }, body: Buffer.alloc(0) });
    expect(teapot.process.outcome?.status).toBe(418);
  });

  it('replaces a streaming response\'s body with CONTINUE_AND_REPLACE, and a request body with a body mutation and its length', async () => {
    const { process, last } = stream([
      {
        name: 'rewrite',
        requestBody: { maxBytes: 100 },
        onRequest: (ctx) => void (ctx.body = Buffer.from('{"rewritten":true}')),
        onResponse: (_ctx, response) => void (response.body = Buffer.from('replaced')),
      },
    ]);
    await process.handle(headersMessage(REQUEST, false));
    expect(last()).toEqual({ requestHeaders: {}, modeOverride: { requestBodyMode: 2, responseHeaderMode: 1 } });
    await process.handle(bodyMessage('{}', 'requestBody'));
    const onBody = last().requestBody.response;
    expect(onBody.bodyMutation.body.toString()).toBe('{"rewritten":true}');
    expect(onBody.headerMutation.setHeaders).toContainEqual({ header: { key: 'content-length', rawValue: Buffer.from('18') }, appendAction: 2 });
    await process.handle(headersMessage({ ':status': '200' }, false, 'responseHeaders'));
    expect(last().responseHeaders.response).toMatchObject({ status: 1, bodyMutation: { body: Buffer.from('replaced') } });
  });

  it('tells Envoy to skip the response when no filter has a response side', async () => {
    const { process, last } = stream([{ name: 'reply', onRequest: () => undefined }]);
    await process.handle(headersMessage(REQUEST));
    expect(last().modeOverride).toEqual({ requestBodyMode: 0, responseHeaderMode: 2 });
    const local = stream([{ name: 'reply', onRequest: () => jsonReply(429, { error: 'slow down' }) }]);
    await local.process.handle(headersMessage(REQUEST));
    expect(local.last().immediateResponse.status.code).toBe(429);
  });
});

describe('the chain meshward extproc builds', () => {
  const logger = createLogger('test', { level: 'silent' });

  it('starts with the header checks and the config\'s limits: 431 and 413 before any filter of the list', async () => {
    const config = { ...extProcConfigSchema.parse({ filters: [{ headers: { securityHeaders: true } }], limits: { maxHeaderBytes: 200, maxBodyBytes: 10 } }), configDir: process.cwd() };
    const built = await buildExtProcChain(config, logger);
    try {
      expect(built.chain.filters.map((f) => f.name)).toEqual(['headerChecks', 'limits', 'headers']);
      const answerTo = async (headers: Record<string, string>) => {
        const sent: ProcessingResponseMessage[] = [];
        const process = new ProcessStream({ chain: built.chain, maxBodyBytes: config.limits.maxBodyBytes, logger, send: (r) => sent.push(r) });
        await process.handle({ request: 'requestHeaders', requestHeaders: { headers: raw(headers), endOfStream: false } });
        return (sent[0] as { immediateResponse?: { status: { code: number } } }).immediateResponse?.status.code;
      };
      expect(await answerTo({ ...REQUEST, 'x-filler': 'x'.repeat(200) })).toBe(431);
      expect(await answerTo({ ...REQUEST, 'content-length': '11' })).toBe(413);
      expect(await answerTo({ ...REQUEST, ':authority': 'a.example', host: 'b.example' })).toBe(400);
      expect(await answerTo(REQUEST)).toBeUndefined();
    } finally {
      await built.close();
    }
  });
});
