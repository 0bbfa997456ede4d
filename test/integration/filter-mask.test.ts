import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { mask } from '../../src/filters/mask.js';
import { filterEnv, serveChain, startApp, type Harness } from '../helpers/filter-harness.js';

// mask in front of a real app over real HTTP: masked JSON with a right content-length, a 502 instead of an answer it
// cannot mask (too big, compressed), and answers that are not JSON streaming by untouched.

const BIG = 64 * 1024;

describe('mask through real sockets', () => {
  let app: Harness;
  const edges: Harness[] = [];
  const filters: HttpFilter[] = [];
  const acceptEncodings: Array<string | undefined> = [];

  beforeAll(async () => {
    app = await startApp((req, res) => {
      acceptEncodings.push(req.headers['accept-encoding']);
      const json = (body: string | Buffer, headers: Record<string, string> = {}) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(body);
      };
      switch (req.url) {
        case '/account':
          // Written by hand: JSON.stringify would round the id, which is past 2^53.
          return json('{ "id": 9007199254740993, "ssn": "123-45-6789", "card": { "number": "4111111111111111", "brand": "visa" } }');
        case '/big':
          return json(JSON.stringify({ ssn: '123-45-6789', padding: 'x'.repeat(BIG) }));
        case '/gzip':
          // An app that compresses whatever the request asked for.
          return json(gzipSync('{"ssn":"123-45-6789"}'), { 'content-encoding': 'gzip' });
        default:
          res.writeHead(200, { 'content-type': 'text/plain' });
          // Not JSON, and larger than the cap: it must stream through, not become a 502.
          return res.end(`ssn 123-45-6789 ${'y'.repeat(BIG)}`);
      }
    });
  });
  afterAll(async () => {
    for (const e of edges) await e.close();
    await app.close();
  });

  async function edge(settings: Record<string, unknown>): Promise<string> {
    const filter = await mask.create(mask.settings.parse({ fields: [{ name: 'ssn' }, { path: '$.card.number', mode: 'partial' }], maxBytes: 4096, ...settings }), filterEnv());
    filters.push(filter);
    const served = await serveChain([filter], app.port);
    edges.push(served);
    return served.url;
  }

  it('masks fields of a JSON answer, with a content-length that fits and every digit of the other numbers', async () => {
    const url = await edge({});
    acceptEncodings.length = 0;
    const res = await fetch(`${url}/account`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    const text = await res.text();
    expect(text).toBe('{"id":9007199254740993,"ssn":"***","card":{"number":"***1111","brand":"visa"}}');
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(acceptEncodings).toEqual(['identity']);
  });

  it('answers 502 for a JSON answer over the cap or compressed, and never sends it', async () => {
    const url = await edge({});
    for (const path of ['/big', '/gzip']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(502);
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ error: 'bad_gateway' });
      expect(body).not.toContain('123-45-6789');
    }
  });

  it('with onOversize: pass, lets an answer over the cap through unmasked', async () => {
    const url = await edge({ onOversize: 'pass' });
    const res = await fetch(`${url}/big`);
    expect(res.status).toBe(200);
    expect((await res.json()) as { ssn: string }).toMatchObject({ ssn: '123-45-6789' });
  });

  it('streams an answer that is not JSON, whatever its size', async () => {
    const url = await edge({});
    const res = await fetch(`${url}/download`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBe(16 + BIG);
  });
});
