import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { HopContext } from '../../src/filters/chain.js';
import type { FilterEnvironment } from '../../src/filters/http-filter.js';

// What a filter's unit tests build it with and run it on: the environment a listener gives it (with a log the test can
// read), and a request's context as a listener makes one. Through real listeners, the filters are tested on a real
// `meshward sidecar` (test/helpers/edge.ts).

/** A logger whose lines a test can read (and search for what must never be logged), and wait for. */
export function memoryLogger() {
  const lines: string[] = [];
  const written = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter((l) => l !== '')) {
        lines.push(line);
        written.emit('line', line);
      }
      done();
    },
  });
  /** Resolves with the first line, logged already or to come, that matches. */
  const waitFor = (pattern: RegExp): Promise<string> => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        written.off('line', onLine);
        resolve(line);
      };
      written.on('line', onLine);
    });
  };
  return { logger: pino({ level: 'debug' }, sink), lines, waitFor };
}

export type TestFilterEnvironment = FilterEnvironment & Pick<ReturnType<typeof memoryLogger>, 'lines' | 'waitFor'>;

export function filterEnv(overrides: Partial<FilterEnvironment> = {}): TestFilterEnvironment {
  const { logger, lines, waitFor } = memoryLogger();
  return { configDir: process.cwd(), logger, listener: 'ingress', tls: false, lines, waitFor, ...overrides };
}

export interface ContextInput {
  method?: string;
  path?: string;
  host?: string;
  /** As sent: names in any case; repeated names as repeated pairs. */
  headers?: Array<[string, string]> | Record<string, string>;
  sourceIp?: string;
  principal?: string;
  body?: Buffer;
}

/** A HopContext as the runtime builds one: headers lower-cased and joined, rawHeaders as sent. */
export function hopContext(input: ContextInput = {}): HopContext {
  const pairs = Array.isArray(input.headers) ? input.headers : Object.entries(input.headers ?? {});
  const headers: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  const ctx: HopContext = {
    filtersEntered: 0,
    request: {
      method: input.method ?? 'GET',
      host: input.host ?? 'api.example.com',
      path: input.path ?? '/',
      headers,
      ...(input.sourceIp === undefined ? {} : { sourceIp: input.sourceIp }),
      ...(input.principal === undefined ? {} : { principal: input.principal }),
    },
    requestId: 'req-1',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    peer: undefined,
    rawHeaders: pairs.flat(),
    declaredBodyBytes: input.body?.length,
    setHeaders: [],
    removeHeaders: [],
  };
  if (input.body !== undefined) ctx.body = input.body;
  return ctx;
}
