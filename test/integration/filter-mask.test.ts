import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startEdge, type Edge } from '../helpers/edge.js';
import { makeMesh } from '../helpers/sidecar.js';

// mask at the edge: a real `meshward sidecar` ingress in front of a mesh service. Masked JSON with a right
// content-length, a 502 instead of an answer it cannot mask (too big, compressed), and answers that are not JSON
// streaming by untouched. Routes under /pass/ give the filter `onOversize: pass`.

const BIG = 64 * 1024;
const FIELDS = [{ name: 'ssn' }, { path: '$.card.number', mode: 'partial' }];

describe('mask through a real ingress listener', () => {
  const { dir, cleanup } = tempDir('meshward-mask-');
  const acceptEncodings: Array<string | undefined> = [];
  let app: http.Server;
  let edge: Edge;

  beforeAll(async () => {
    app = http.createServer((req, res) => {
      acceptEncodings.push(req.headers['accept-encoding']);
      const json = (body: string | Buffer, headers: Record<string, string> = {}) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(body);
      };
      switch (req.url!.slice(req.url!.lastIndexOf('/'))) {
        case '/account':
          // Written by hand: JSON.stringify would round the id, which is past 2^53.
          return json('{ "id": 9007199254740993, "ssn": "123-45-6789", "card": { "number": "4111111111111111", "brand": "visa" } }', { 'content-length': '107' });
        case '/big':
          return json(JSON.stringify({ ssn: '123-45-6789', padding: 'x'.repeat(BIG) }));
        case '/ranged': {
          // An app that serves byte ranges (a static JSON file, say): a range is a fragment no mask can read whole.
          const whole = '{"ssn":"123-45-6789","name":"ann"}';
          const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
          if (range === null) return json(whole);
          const part = whole.slice(Number(range[1]), Number(range[2]) + 1);
          const multipart = req.url!.includes('multipart');
          res.writeHead(206, {
            'content-type': multipart ? 'multipart/byteranges; boundary=B' : 'application/json',
            ...(multipart ? {} : { 'content-range': `bytes ${range[1]}-${range[2]}/${whole.length}` }),
          });
          return res.end(multipart ? `--B\r\ncontent-type: application/json\r\n\r\n${part}\r\n--B--\r\n` : part);
        }
        case '/text-json':
          // JSON under another name for JSON.
          return json('{"ssn":"123-45-6789"}', { 'content-type': 'text/json; charset=utf-8' });
        case '/gzip':
          // An app that compresses whatever the request asked for.
          return json(gzipSync('{"ssn":"123-45-6789"}'), { 'content-encoding': 'gzip' });
        default:
          res.writeHead(200, { 'content-type': 'text/plain' });
          // Not JSON, and larger than the cap: it must stream through, not become a 502.
          return res.end(`ssn 123-45-6789 ${'y'.repeat(BIG)}`);
      }
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    edge = await startEdge(await makeMesh(dir), {
      app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      ingress: {
        routes: [
          { prefix: '/pass', to: 'orders', filters: { mask: { fields: FIELDS, maxBytes: 4096, onOversize: 'pass' } } },
          { prefix: '/', to: 'orders' },
        ],
        filters: [{ mask: { fields: FIELDS, maxBytes: 4096 } }],
      },
    });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    cleanup();
  });

  it('masks fields of a JSON answer, with a content-length that fits and every digit of the other numbers', async () => {
    acceptEncodings.length = 0;
    const res = await edge.fetch('/account', { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    const text = await res.text();
    expect(text).toBe('{"id":9007199254740993,"ssn":"***","card":{"number":"***1111","brand":"visa"}}');
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(acceptEncodings).toEqual(['identity']);
  });

  it('asks the app for the whole answer: a Range request cannot fetch a field as a fragment the mask cannot place', async () => {
    for (const path of ['/ranged', '/multipart/ranged']) {
      const res = await edge.fetch(path, { headers: { range: 'bytes=7-19', 'if-range': '"etag"' } });
      expect(res.status, path).toBe(200);
      expect(await res.text(), path).toBe('{"ssn":"***","name":"ann"}');
    }
  });

  it('answers HEAD for a JSON answer without the unmasked length or a 502', async () => {
    const res = await edge.fetch('/account', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('content-length')).toBeNull();
  });

  it('masks a JSON answer under another name for JSON (text/json) as well', async () => {
    const res = await edge.fetch('/text-json');
    expect(await res.text()).toBe('{"ssn":"***"}');
  });

  it('answers 502 for a JSON answer over the cap or compressed, and never sends it', async () => {
    for (const path of ['/big', '/gzip']) {
      const res = await edge.fetch(path);
      expect(res.status, path).toBe(502);
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ error: 'bad_gateway' });
      expect(body).not.toContain('123-45-6789');
    }
  });

  it('with onOversize: pass (a route of its own), lets an answer over the cap through unmasked', async () => {
    const res = await edge.fetch('/pass/big');
    expect(res.status).toBe(200);
    expect((await res.json()) as { ssn: string }).toMatchObject({ ssn: '123-45-6789' });
  });

  it('streams an answer that is not JSON, whatever its size', async () => {
    const res = await edge.fetch('/download');
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBe(16 + BIG);
  });
});
