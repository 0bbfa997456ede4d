import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HttpFilter } from '../../src/filters/http-filter.js';
import { ambiguousMember } from '../../src/filters/json-member-names.js';
import { loadOpenApi, type OpenApi } from '../../src/filters/openapi-document.js';
import { checkRequest, type RequestFacts, type RequestVerdict } from '../../src/filters/openapi-request.js';
import { validate } from '../../src/filters/validate.js';
import type { LocalReply } from '../../src/filters/local-reply.js';
import { tempDir } from '../helpers/cli.js';
import { filterEnv, hopContext } from '../helpers/filter-context.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/openapi');
const ORDERS = readFileSync(join(FIXTURES, 'orders-3.0.yaml'), 'utf8');
const PETS = readFileSync(join(FIXTURES, 'pets-3.1.json'), 'utf8');

const TENANT = { 'x-tenant': 'acme' };

function request(method: string, target: string, extra: Partial<RequestFacts> = {}): RequestFacts {
  return { method, target, headers: TENANT, body: undefined, ...extra };
}

function json(value: unknown): Pick<RequestFacts, 'headers' | 'body'> {
  return { headers: { 'content-type': 'application/json' }, body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)) };
}

function problems(verdict: RequestVerdict): string[] {
  expect(verdict).toMatchObject({ ok: false, status: 400 });
  return (verdict as Extract<RequestVerdict, { status: 400 }>).problems.map((p) => `${p.in} ${p.pointer}: ${p.message}`);
}

describe('OpenAPI 3.0 requests', () => {
  let api: OpenApi;
  beforeAll(async () => {
    api = await loadOpenApi(ORDERS);
  });
  const check = (method: string, target: string, extra: Partial<RequestFacts> = {}) => checkRequest(api, request(method, target, extra));

  it('lets a request the document describes through', () => {
    expect(check('GET', '/orders?limit=5&status=open&status=closed&fields=a,b')).toEqual({ ok: true });
    expect(check('GET', '/orders/7')).toEqual({ ok: true });
    expect(check('POST', '/orders', json({ item: 'widget', quantity: 2, note: null, parent: { item: 'box', quantity: 1 } }))).toEqual({ ok: true });
    expect(check('GET', '/files/abc.json')).toEqual({ ok: true });
  });

  it('answers 404 for a path the document does not have, after normalising the path', () => {
    expect(check('GET', '/admin')).toMatchObject({ ok: false, status: 404, reason: 'no path of the API matches "/admin"' });
    expect(check('GET', '/orders/1/../../admin')).toMatchObject({ status: 404, reason: 'no path of the API matches "/admin"' });
    expect(check('GET', '/orders/')).toMatchObject({ status: 404 });
    expect(check('GET', '/orders/1/2')).toMatchObject({ status: 404 });
    expect(check('GET', '/orders/%2e%2e/admin')).toMatchObject({ status: 404, reason: 'no path of the API matches "/admin"' });
  });

  it('refuses a target it cannot read one way only (400)', () => {
    expect(check('GET', '/orders/1%2F2')).toMatchObject({ status: 400, reason: 'the path contains an encoded slash (%2F)' });
  });

  it('answers 405 with Allow for a method the path does not take; HEAD goes with GET', () => {
    expect(check('PUT', '/orders')).toEqual({ ok: false, status: 405, reason: '/orders does not take PUT', allow: 'GET, POST, HEAD' });
    expect(check('POST', '/orders/7')).toMatchObject({ status: 405, allow: 'GET, DELETE, HEAD' });
    expect(check('HEAD', '/orders/7')).toEqual({ ok: true });
  });

  it('matches a concrete path before a templated one', () => {
    expect(check('GET', '/orders/latest')).toEqual({ ok: true });
    expect(check('DELETE', '/orders/latest')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
  });

  it('checks path, query, header and cookie parameters, each problem with a pointer into its part', () => {
    expect(problems(check('GET', '/orders/abc'))).toEqual(['path /id: must be integer']);
    expect(problems(check('GET', '/orders/0'))).toEqual(['path /id: must be >= 1']);
    expect(problems(check('GET', '/orders/99999999999'))).toEqual(['path /id: must match format "int32"']);
    expect(problems(check('GET', '/files/toolong.json'))).toEqual(['path /name: must NOT have more than 5 characters']);
    expect(problems(check('GET', '/orders?limit=0&status=open&status=lost&fields=a,b,c,d', { headers: { 'x-tenant': 'ACME', cookie: 'session=short' } }))).toEqual([
      'query /limit: must be >= 1',
      'query /status/1: must be equal to one of the allowed values',
      'query /fields: must NOT have more than 3 items',
      'header /x-tenant: must match pattern "^[a-z]+$"',
      'cookie /session: must NOT have fewer than 8 characters',
    ]);
    expect(problems(check('GET', '/orders', { headers: {} }))).toEqual(['header /x-tenant: is required']);
  });

  it('refuses a single-valued query parameter given twice (parameter pollution)', () => {
    expect(problems(check('GET', '/orders?limit=5&limit=500'))).toEqual(['query /limit: must be integer']);
  });

  it('refuses a single-valued cookie sent twice, whichever of them is valid (servers differ on which one they read)', () => {
    for (const cookie of ['session=longenough; session=short', 'session=short; other=1; session=longenough']) {
      expect(problems(check('GET', '/orders', { headers: { ...TENANT, cookie } })), cookie).toEqual(['cookie /session: must be string']);
    }
    expect(check('GET', '/orders', { headers: { ...TENANT, cookie: 'session=longenough; other=1' } })).toEqual({ ok: true });
  });

  it('answers 415 for a body of a type the operation does not take, or a body where it takes none', () => {
    expect(check('POST', '/orders', { headers: { 'content-type': 'application/xml' }, body: Buffer.from('<a/>') })).toEqual({
      ok: false,
      status: 415,
      reason: 'content type "application/xml" is not one this operation takes (application/json, text/csv)',
    });
    expect(check('POST', '/orders', { headers: {}, body: Buffer.from('{}') })).toMatchObject({ status: 415, reason: expect.stringContaining('no content-type') });
    expect(check('GET', '/orders/7', json({}))).toMatchObject({ status: 415, reason: 'this operation takes no request body' });
    expect(check('POST', '/orders', { headers: { 'content-type': 'text/csv; charset=utf-8' }, body: Buffer.from('a,b') })).toEqual({ ok: true });
  });

  it('checks a JSON body: injected fields, types, required fields, nested and recursive parts', () => {
    expect(problems(check('POST', '/orders', json({ item: 'w', quantity: 1, isAdmin: true })))).toEqual(['body /isAdmin: is not allowed here (additionalProperties: false)']);
    expect(problems(check('POST', '/orders', json({ item: 'w', quantity: 0, tags: ['ok', 'long'], parent: { item: 'x', price: 1 } })))).toEqual([
      'body /quantity: must be > 0',
      'body /tags/1: must NOT have more than 3 characters',
      'body /parent/quantity: is required',
      'body /parent/price: is not allowed here (additionalProperties: false)',
    ]);
    expect(problems(check('POST', '/orders', json({ item: null, quantity: '1' })))).toEqual(['body /item: must be string', 'body /quantity: must be integer']);
  });

  it('refuses a missing required body and a body that is no JSON', () => {
    expect(problems(check('POST', '/orders'))).toEqual(['body : is required']);
    expect(problems(check('POST', '/orders', json('{"item": ')))).toEqual(['body : is not valid JSON']);
  });

  it('refuses a JSON body with a member name twice, in any spelling, where parsers disagree on which one counts', () => {
    // JSON.parse keeps the last (valid here), a first-wins parser the first (a quantity of -5).
    expect(problems(check('POST', '/orders', json('{"item":"w","quantity":-5,"quantity":1}')))).toEqual(['body /quantity: is a member name the object has more than once']);
    expect(problems(check('POST', '/orders', json('{"item":"w","quantity":1,"parent":{"item":"x","quantity":1,"\\u0071uantity":2}}')))).toEqual([
      'body /parent/quantity: is a member name the object has more than once',
    ]);
    expect(problems(check('POST', '/orders', json('{"item":"w","quantity":1,"tags":["a"],"note":"\\"item\\":\\"x\\"","item":"v"}')))).toEqual([
      'body /item: is a member name the object has more than once',
    ]);
    // The same name in different objects, or as a string value, is no duplicate.
    expect(check('POST', '/orders', json('{"item":"w","quantity":1,"note":"item","parent":{"item":"x","quantity":1}}'))).toEqual({ ok: true });
  });

  it('finds a duplicate member inside arrays and gives its pointer', () => {
    expect(ambiguousMember('[1,{"a":1},[{"b":1,"c":[{}],"b":2}]]')?.pointer).toBe('/2/0/b');
    expect(ambiguousMember('{"a\\"b":1,"a\\u0022b":2}')?.pointer).toBe('/a"b');
    expect(ambiguousMember('{"x":{"a":1},"y":{"a":1}}')).toBeUndefined();
  });

  it('refuses a body that is no UTF-8, or a member name with a lone surrogate that truncating parsers read as another name', () => {
    const bytes = (text: string, ...tail: number[]) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.concat([Buffer.from(text), Buffer.from(tail)]) });
    expect(problems(check('POST', '/orders', bytes('{"item":"w","quantity":1,"note":"a', 0xff, 0x22, 0x7d)))).toEqual(['body : is not valid UTF-8']);
    expect(problems(check('POST', '/orders', bytes('', 0xef, 0xbb, 0xbf, ...Buffer.from('{"item":"w","quantity":1}'))))).toEqual(['body : is not valid JSON']);
    expect(problems(check('POST', '/orders', json('{"item":"w","quantity":1,"parent":{"item":"x","quantity":1,"quantity\\ud800":-5}}')))).toEqual([
      'body /parent/quantity\ud800: is a member name with a lone surrogate (no Unicode)',
    ]);
    expect(check('POST', '/orders', json('{"item":"w\\ud83d\\ude00","quantity":1}'))).toEqual({ ok: true });
  });

  it('lists at most 10 problems', () => {
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`extra${i}`, i]));
    const listed = problems(check('POST', '/orders', json({ item: 'w', quantity: 1, ...many })));
    expect(listed).toHaveLength(10);
  });
});

describe('OpenAPI 3.1 requests', () => {
  it('uses JSON Schema 2020-12: type lists, const, prefixItems, unevaluatedProperties; media ranges', async () => {
    const api = await loadOpenApi(PETS);
    const post = (body: unknown, type = 'application/json') => checkRequest(api, { method: 'POST', target: '/pets', headers: { 'content-type': type }, body: Buffer.from(JSON.stringify(body)) });
    expect(post({ name: 'Rex', nickname: null, kind: 'pet', position: [1, 2] })).toEqual({ ok: true });
    expect(post({ name: 'Rex' }, 'application/merge-patch+json')).toEqual({ ok: true });
    expect(problems(post({ name: 'Rex', kind: 'wolf', position: [1, 2, 3], admin: true }))).toEqual([
      'body /kind: must be equal to constant',
      'body /position: must NOT have more than 2 items',
      'body /admin: is not allowed here (unevaluatedProperties: false)',
    ]);
    expect(checkRequest(api, { method: 'POST', target: '/pets', headers: { 'content-type': 'text/plain' }, body: Buffer.from('x') })).toMatchObject({ status: 415 });
  });

  it('checks a JSON body under another name for JSON (application/x-json) that a media range takes, as an app reading it as JSON would', async () => {
    const api = await loadOpenApi(PETS);
    const verdict = checkRequest(api, { method: 'POST', target: '/pets', headers: { 'content-type': 'application/x-json' }, body: Buffer.from('{"name":"Rex","admin":true}') });
    expect(problems(verdict)).toEqual(['body /admin: is not allowed here (unevaluatedProperties: false)']);
  });
});

describe('loading OpenAPI documents', () => {
  const refused = async (text: string) => {
    const err = await loadOpenApi(text).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err, 'the document was accepted').toBeDefined();
    return err!;
  };

  it('refuses a document that breaks the OpenAPI schema, naming the pointer and the reason', async () => {
    expect(await refused(ORDERS.replace('maxLength: 20', 'maxLenght: 20'))).toContain('/components/schemas/NewOrder/properties/item: has a field the OpenAPI schema does not know: "maxLenght"');
    expect(await refused(ORDERS.replace("info: { title: Orders, version: '1' }", 'info: { title: Orders }'))).toContain("/info: must have required property 'version'");
  });

  it('refuses versions it does not check, YAML it cannot read, and what is no document', async () => {
    expect(await refused(ORDERS.replace('openapi: 3.0.3', 'openapi: 3.2.0'))).toBe('/openapi: must be an OpenAPI version 3.0.x or 3.1.x');
    expect(await refused('swagger: "2.0"\n')).toBe('/openapi: must be an OpenAPI version 3.0.x or 3.1.x');
    expect(await refused('openapi: [\n')).toMatch(/^not valid YAML or JSON: .*line 2/);
    expect(await refused('- a list\n')).toMatch(/is not an OpenAPI document/);
  });

  it('refuses references it cannot follow, and parameters it could not check as written', async () => {
    expect(await refused(ORDERS.replace("$ref: '#/components/schemas/NewOrder' }", "$ref: 'other.yaml#/NewOrder' }"))).toMatch(/other\.yaml#\/NewOrder/);
    expect(await refused(ORDERS.replace("- $ref: '#/components/parameters/OrderId'", "- $ref: '#/components/parameters/Nope'"))).toMatch(/Nope/);
    expect(await refused(ORDERS.replace('{ name: limit, in: query,', '{ name: limit, in: query, style: deepObject,'))).toBe(
      '/paths/~1orders/get/parameters/0/style: style "deepObject" is not supported for query parameters (supported: form, spaceDelimited, pipeDelimited)',
    );
    expect(await refused(ORDERS.replace("schema: { type: string, minLength: 8 }", 'schema: { type: object }'))).toBe(
      '/paths/~1orders/get/parameters/4/schema: object-valued parameters are not supported (only primitive values and arrays of them)',
    );
  });

  it('refuses a pattern that is no regular expression, and a schema ajv cannot compile, naming where it is', async () => {
    expect(await refused(ORDERS.split("pattern: '^[a-z]+$'").join("pattern: '^[a-z+$'"))).toBe('/paths/~1orders/get/parameters/3/schema/pattern: must match format "regex"');
    // 3.1 leaves schemas to JSON Schema, so the OpenAPI schema lets this one by and ajv finds it.
    expect(await refused(PETS.replace('"type": "string" }', '"type": "strin" }'))).toMatch(
      /^\/paths\/~1pets\/post\/requestBody\/content\/application~1\*\/schema: the schema cannot be compiled: schema is invalid: data\/properties\/name\/type/,
    );
  });
});

describe('validate filter', () => {
  const cleanups: Array<() => void> = [];
  const filters: HttpFilter[] = [];
  afterEach(async () => {
    for (const f of filters.splice(0)) await f.close?.();
    for (const c of cleanups.splice(0)) c();
  });

  async function make() {
    const { dir, cleanup } = tempDir('meshward-validate-');
    cleanups.push(cleanup);
    copyFileSync(join(FIXTURES, 'orders-3.0.yaml'), join(dir, 'api.yaml'));
    const env = filterEnv({ configDir: dir });
    const filter = await validate.create(validate.settings.parse({ openapi: 'api.yaml', maxBodyBytes: 2048 }), env);
    filters.push(filter);
    return { filter, env, file: join(dir, 'api.yaml') };
  }

  it('asks for the body up to maxBodyBytes, and answers with JSON replies', async () => {
    const { filter } = await make();
    expect(filter.requestBody).toEqual({ maxBytes: 2048 });
    const reply = (ctx: ReturnType<typeof hopContext>) => filter.onRequest!(ctx) as LocalReply;
    const missing = reply(hopContext({ path: '/nope' }));
    expect([missing.status, JSON.parse(missing.body)]).toEqual([404, { error: 'not_found', reason: 'no path of the API matches "/nope"', requestId: 'req-1' }]);
    const wrong = reply(hopContext({ method: 'PATCH', path: '/orders' }));
    expect([wrong.status, wrong.headers]).toEqual([405, { allow: 'GET, POST, HEAD' }]);
    const ctx = hopContext({ method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"item":"w","quantity":1,"role":"admin"}') });
    const injected = reply(ctx);
    expect(injected.status).toBe(400);
    expect(JSON.parse(injected.body)).toEqual({
      error: 'bad_request',
      reason: 'the request does not match the API description',
      errors: [{ in: 'body', pointer: '/role', message: 'is not allowed here (additionalProperties: false)' }],
      requestId: 'req-1',
    });
    expect(ctx.decision).toEqual({ outcome: 'invalid', rule: 'validate' });
    expect(filter.onRequest!(hopContext({ path: '/orders', headers: TENANT }))).toBeUndefined();
  });

  it('refuses to start on an invalid document, naming file, pointer and reason', async () => {
    const { dir, cleanup } = tempDir('meshward-validate-');
    cleanups.push(cleanup);
    writeFileSync(join(dir, 'api.yaml'), ORDERS.replace('type: integer, minimum: 1, maximum: 100', 'type: integer, minimum: one'));
    await expect(validate.create(validate.settings.parse({ openapi: 'api.yaml' }), filterEnv({ configDir: dir }))).rejects.toThrow(
      /api\.yaml: \/paths\/~1orders\/get\/parameters\/0\/schema\/minimum: must be number/,
    );
  });

  it('reloads a changed document, and keeps the last good one when the new one is invalid', async () => {
    const { filter, env, file } = await make();
    writeFileSync(file, ORDERS.replace('/orders/latest:', '/orders/newest:').replace("openapi: 3.0.3", 'openapi: 3.0.3\nbroken: [1'));
    expect(await env.waitFor(/OpenAPI document rejected/)).toContain('not valid YAML or JSON');
    expect(filter.onRequest!(hopContext({ path: '/orders/latest' }))).toBeUndefined();
    writeFileSync(file, ORDERS.replace('/orders/latest:', '/orders/newest:'));
    await env.waitFor(/OpenAPI document reloaded/);
    expect(filter.onRequest!(hopContext({ path: '/orders/newest' }))).toBeUndefined();
  });
});
