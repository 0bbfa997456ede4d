import { describe, expect, it } from 'vitest';
import { plainIssueMessage } from '../../src/config/issue-message.js';
import type { FilterResponse, HttpFilter } from '../../src/filters/http-filter.js';
import { jsonMasker, maskValue } from '../../src/filters/json-mask.js';
import { jsonPathProblem, mask } from '../../src/filters/mask.js';
import { isJsonContentType } from '../../src/filters/media-type.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

describe('masking a value', () => {
  it('full: "***" for anything but null', () => {
    for (const v of ['secret', 12, true, { a: 1 }, [1]]) expect(maskValue(v, 'full')).toBe('***');
    expect(maskValue(null, 'full')).toBeNull();
  });

  it('partial: the last 4 characters of a value of 8 or more; a shorter one is masked whole', () => {
    expect(maskValue('4111111111111111', 'partial')).toBe('***1111');
    expect(maskValue('12345678', 'partial')).toBe('***5678');
    expect(maskValue('1234567', 'partial')).toBe('***');
    expect(maskValue({ a: 1 }, 'partial')).toBe('***');
  });
});

describe('masking a JSON document', () => {
  it('masks a name wherever it occurs, in any case, inside arrays and nested objects', () => {
    const masked = jsonMasker([{ name: 'ssn', mode: 'full' }, { name: 'cardNumber', mode: 'partial' }]);
    const doc = { ssn: '123-45-6789', people: [{ SSN: '987-65-4321', cardnumber: '4111111111111111' }], nested: { deeper: { Ssn: { any: 'shape' } } }, ok: 'ssn' };
    expect(JSON.parse(masked(JSON.stringify(doc)))).toEqual({
      ssn: '***',
      people: [{ SSN: '***', cardnumber: '***1111' }],
      nested: { deeper: { Ssn: '***' } },
      ok: 'ssn',
    });
  });

  it('masks by JSON path', () => {
    const masked = jsonMasker([
      { path: '$.card.number', mode: 'partial' },
      { path: '$.users[*].email', mode: 'full' },
      { path: '$..token', mode: 'full' },
    ]);
    const doc = { card: { number: '5500000000000004', holder: 'A' }, users: [{ email: 'a@x', id: 1 }, { email: 'b@x', id: 2 }], deep: [{ token: 't1' }], number: 'kept' };
    expect(JSON.parse(masked(JSON.stringify(doc)))).toEqual({
      card: { number: '***0004', holder: 'A' },
      users: [{ email: '***', id: 1 }, { email: '***', id: 2 }],
      deep: [{ token: '***' }],
      number: 'kept',
    });
  });

  it('keeps every digit of numbers it does not mask, and masks those it does from their exact digits', () => {
    const masked = jsonMasker([{ name: 'account', mode: 'partial' }]);
    expect(masked('{"id":12345678901234567890,"price":1.10,"exp":1e400,"account":98765432109876543210}')).toBe(
      '{"id":12345678901234567890,"price":1.10,"exp":1e400,"account":"***3210"}',
    );
  });

  it('writes the document anew, so a secret behind a duplicate key is gone too', () => {
    const masked = jsonMasker([{ name: 'ssn', mode: 'full' }]);
    expect(masked('{"user":{"ssn":"1"},"user":{"name":"x"}}')).toBe('{"user":{"name":"x"}}');
    expect(masked('{"ssn":"123","ssn":"456"}')).toBe('{"ssn":"***"}');
  });

  it('throws for text that is no JSON', () => {
    expect(() => jsonMasker([{ name: 'a', mode: 'full' }])('{"a":')).toThrow(SyntaxError);
  });

  it('takes paths from the root that select inside the document, without expressions', () => {
    expect(jsonPathProblem('$.a.b')).toBeUndefined();
    expect(jsonPathProblem('$')).toMatch(/select something inside/);
    expect(jsonPathProblem('a.b')).toMatch(/must start with "\$"/);
    expect(jsonPathProblem('$..[?(@.secret)]')).toMatch(/filter and script expressions/);
  });

  it('knows JSON content types', () => {
    for (const t of ['application/json', 'Application/JSON; charset=utf-8', 'application/problem+json', 'application/vnd.api+json', 'text/json', 'application/x-json', 'text/x-json; charset=utf-8', 'text/vnd.foo+json']) expect(isJsonContentType(t), t).toBe(true);
    for (const t of ['text/plain', 'text/json-ish', 'application/jsonp', undefined]) expect(isJsonContentType(t), String(t)).toBe(false);
  });
});

describe('mask filter', async () => {
  const make = (settings: Record<string, unknown> = {}): Promise<HttpFilter> =>
    Promise.resolve(mask.create(mask.settings.parse({ fields: [{ name: 'ssn' }, { path: '$.card.number', mode: 'partial' }], ...settings }), filterEnv()));
  const json = (body: string, headers: FilterResponse['headers'] = {}): FilterResponse => ({
    status: 200,
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    body: Buffer.from(body),
  });

  it('refuses settings without fields, with a field that is neither or both, or a bad path', async () => {
    const refuse = (s: Record<string, unknown>) =>
      mask.settings.safeParse(s, { error: plainIssueMessage }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(refuse({ fields: [] })).toBe('fields: must have at least one entry');
    expect(refuse({ fields: [{ mode: 'full' }] })).toBe('fields.0: give either name or path');
    expect(refuse({ fields: [{ name: 'a', path: '$.a' }] })).toBe('fields.0: give either name or path');
    expect(refuse({ fields: [{ path: '$' }] })).toMatch(/^fields\.0\.path: must start with "\$" and select something inside/);
    expect(refuse({ fields: [{ name: 'a', mode: 'half' }] })).toMatch(/^fields\.0\.mode: must be one of "full", "partial"/);
    expect(refuse({ fields: [{ name: 'a' }], onOversize: 'drop' })).toMatch(/^onOversize: must be one of "reply502", "pass"/);
  });

  it('asks the app not to compress, and buffers JSON answers only', async () => {
    const filter = await make({ maxBytes: 4096, onOversize: 'pass' });
    const ctx = hopContext({ headers: { 'accept-encoding': 'gzip, br' } });
    expect(filter.onRequest!(ctx)).toBeUndefined();
    expect(ctx.setHeaders).toEqual([['accept-encoding', 'identity']]);
    expect(filter.responseBody).toMatchObject({ maxBytes: 4096, oversize: 'pass' });
    expect(filter.responseBody!.when!({ status: 200, headers: { 'content-type': 'application/json' } })).toBe(true);
    expect(filter.responseBody!.when!({ status: 200, headers: { 'content-type': 'text/event-stream' } })).toBe(false);
  });

  it('masks a JSON answer and fixes the headers that describe its bytes', async () => {
    const response = json('{"ssn":"123-45-6789","card":{"number":"4111111111111111"}}', { digest: 'sha-256=abc', etag: '"v1"' });
    (await make()).onResponse!(hopContext(), response);
    const text = '{"ssn":"***","card":{"number":"***1111"}}';
    expect(response.body!.toString()).toBe(text);
    expect(response.headers).toEqual({ 'content-type': 'application/json', 'content-length': String(text.length), etag: '"v1"' });
  });

  it('leaves answers that are not JSON, or have no body, alone', async () => {
    const html = { status: 200, headers: { 'content-type': 'text/html' }, body: Buffer.from('<p>ssn</p>') };
    (await make()).onResponse!(hopContext(), html);
    expect(html.body.toString()).toBe('<p>ssn</p>');
    const head = json('');
    (await make()).onResponse!(hopContext(), head);
    expect(head.body!.length).toBe(0);
  });

  it('answers 502 rather than send what it could not mask: compressed, not JSON after all, or not buffered', async () => {
    const cases: FilterResponse[] = [
      json('compressed bytes', { 'content-encoding': 'gzip', 'set-cookie': 'a=1' }),
      json('{"ssn": "123"'),
      { status: 200, headers: { 'content-type': 'application/json' } },
    ];
    for (const response of cases) {
      (await make()).onResponse!(hopContext(), response);
      expect(response.status).toBe(502);
      expect(response.headers).toEqual({ 'content-type': 'application/json' });
      expect(JSON.parse(response.body!.toString())).toMatchObject({ error: 'bad_gateway', requestId: 'req-1' });
      expect(response.body!.toString()).not.toContain('123');
    }
  });

  it('with onOversize: pass, lets an answer it did not buffer through as it is', async () => {
    const response: FilterResponse = { status: 200, headers: { 'content-type': 'application/json' } };
    (await make({ onOversize: 'pass' })).onResponse!(hopContext(), response);
    expect(response).toEqual({ status: 200, headers: { 'content-type': 'application/json' } });
  });
});
