import { describe, expect, it } from 'vitest';
import { chainOf, runRequestSide, runResponseSide, type HopContext, type HttpFilter } from '../../src/filters/index.js';
import { replies } from '../../src/filters/local-reply.js';

// The chain runtime alone: what runs, in which order, and that a chain of synchronous filters never makes a promise
// (the hot path: issue 12's cost bars). Through real listeners: test/integration/filter-chain-runtime.test.ts.

function context(): HopContext {
  return {
    request: { method: 'GET', host: 'app', path: '/', headers: {} },
    requestId: 'r1',
    traceId: 't1',
    peer: undefined,
    rawHeaders: [],
    declaredBodyBytes: undefined,
    setHeaders: [],
    removeHeaders: [],
    filtersEntered: 0,
  };
}

const noBody = () => Promise.reject(new Error('no body here'));

function logging(log: string[], name: string, reply = false): HttpFilter {
  return {
    name,
    onRequest: (ctx) => {
      log.push(`request ${name}`);
      return reply ? replies.forbidden(ctx.requestId, name) : undefined;
    },
    onResponse: () => void log.push(`response ${name}`),
  };
}

describe('the chain runtime', () => {
  it('stays synchronous when every filter is: no promise on either side', () => {
    const log: string[] = [];
    const chain = chainOf([logging(log, 'a'), { name: 'quiet' }, logging(log, 'b')]);
    const ctx = context();
    const result = runRequestSide(chain, ctx, noBody);
    expect(result).toBeUndefined();
    expect(runResponseSide(chain, ctx, { status: 200, headers: {} })).toBeUndefined();
    expect(log).toEqual(['request a', 'request b', 'response b', 'response a']);
  });

  it('ends at the first reply and runs the response side only for the filters that ran', () => {
    const log: string[] = [];
    const chain = chainOf([logging(log, 'a'), logging(log, 'b', true), logging(log, 'c')]);
    const ctx = context();
    expect(runRequestSide(chain, ctx, noBody)).toMatchObject({ status: 403 });
    runResponseSide(chain, ctx, { status: 403, headers: {} });
    expect(log).toEqual(['request a', 'request b', 'response b', 'response a']);
  });

  it('goes on after an asynchronous filter, in order', async () => {
    const log: string[] = [];
    const later: HttpFilter = { name: 'later', onRequest: () => new Promise((resolve) => setImmediate(() => resolve(undefined))) };
    const chain = chainOf([logging(log, 'a'), later, logging(log, 'b')]);
    const result = runRequestSide(chain, context(), noBody);
    expect(result).toBeInstanceOf(Promise);
    expect(log).toEqual(['request a']);
    await result;
    expect(log).toEqual(['request a', 'request b']);
  });

  it('reads the body only for a filter that asks, up to the least any asks, and refuses more with 413', async () => {
    const reads: number[] = [];
    const reader = (body: string) => (maxBytes: number) => {
      reads.push(maxBytes);
      return Promise.resolve(body.length > maxBytes ? undefined : Buffer.from(body));
    };
    const seen: string[] = [];
    const reading = (maxBytes: number): HttpFilter => ({ name: `read${maxBytes}`, requestBody: { maxBytes }, onRequest: (ctx) => void seen.push(ctx.body!.toString()) });
    const chain = chainOf([{ name: 'first', onRequest: (ctx) => void seen.push(String(ctx.body)) }, reading(10), reading(5)]);
    expect(chain.requestBodyBytes).toBe(5);
    expect(await runRequestSide(chain, context(), reader('abc'))).toBeUndefined();
    expect(seen).toEqual(['undefined', 'abc', 'abc']);
    expect(reads).toEqual([5]);
    const ctx = context();
    expect(await runRequestSide(chain, ctx, reader('abcdefgh'))).toMatchObject({ status: 413 });
    expect(ctx.filtersEntered).toBe(1);
  });

  it('buffers response bodies to the least cap asked, refusing over it when any filter says so', () => {
    const asking = (maxBytes: number, oversize: 'reply502' | 'pass'): HttpFilter => ({ name: 'f', responseBody: { maxBytes, oversize }, onResponse: () => undefined });
    expect(chainOf([asking(100, 'pass'), asking(50, 'pass')]).responseBody).toMatchObject({ maxBytes: 50, oversize: 'pass' });
    expect(chainOf([asking(100, 'reply502'), asking(50, 'pass')]).responseBody).toMatchObject({ maxBytes: 50, oversize: 'reply502' });
    expect(chainOf([{ name: 'head-only', onRequest: () => undefined }])).toMatchObject({ hasResponseSide: false, responseBody: undefined, requestBodyBytes: undefined });
  });

  it('buffers a response when any asking filter wants it: one without `when` wants every response', () => {
    const json = { status: 200, headers: { 'content-type': 'application/json' } };
    const stream = { status: 200, headers: { 'content-type': 'text/event-stream' } };
    const picky: HttpFilter = { name: 'json-only', responseBody: { maxBytes: 10, oversize: 'pass', when: (r) => r.headers['content-type'] === 'application/json' }, onResponse: () => undefined };
    const greedy: HttpFilter = { name: 'all', responseBody: { maxBytes: 10, oversize: 'pass' }, onResponse: () => undefined };
    const pickyOnly = chainOf([picky]).responseBody!;
    expect([pickyOnly.wanted(json), pickyOnly.wanted(stream)]).toEqual([true, false]);
    const both = chainOf([picky, greedy]).responseBody!;
    expect([both.wanted(json), both.wanted(stream)]).toEqual([true, true]);
  });
});
