import { Writable } from 'node:stream';
import type { ResponseBuffering } from '../filters/chain.js';
import type { FilterResponse } from '../filters/http-filter.js';
import { writeResponseHead, type DownstreamResponse } from './upstream.js';

// An upstream's answer on its way through the chain's response side (filters/chain.ts). Only chains with a
// response side come here; every other answer streams straight into the client's response as before. The head is
// held until the filters are done; the body is held too only when a filter asked for it (ResponseBuffering), and
// is then sent whole with its content-length. Anything that goes wrong before a byte was sent (a filter that throws,
// a header it set that cannot be sent, a body over the cap) fails the writer, so the forwarder fails and the
// listener answers 502: an answer the filters did not pass is never sent as the app made it.

export interface ResponseFiltering {
  /** Buffer the whole body before the filters run; undefined: they see the head only and the body streams. */
  readonly body: ResponseBuffering | undefined;
  apply(response: FilterResponse): void | Promise<void>;
}

export const RESPONSE_TOO_LARGE = 'RESPONSE_TOO_LARGE';

type Done = (err?: Error | null) => void;

/**
 * The writable the upstream's body goes into: `res` itself when the filters finished at once and left the body alone.
 * It finishes once the answer is handed to `res`; its errors come before anything reached `res`. `onStatus` hears the
 * status actually sent (a filter may change it).
 */
export function filteredResponse(
  res: DownstreamResponse,
  status: number,
  headers: Record<string, string | string[]>,
  filtering: ResponseFiltering,
  onStatus: (status: number) => void,
): Writable {
  const response: FilterResponse = { status, headers };
  const send = () => {
    onStatus(response.status);
    if (response.body !== undefined && !bodyless(response.status)) response.headers['content-length'] = String(response.body.length);
    writeResponseHead(res, response.status, response.headers);
  };
  // Both kinds of response are Writables: the body is written through that one face.
  const out: Writable = res;
  if (filtering.body === undefined || !filtering.body.wanted(response)) return heldBody(out, response, filtering, send) ?? res;
  return bufferedBody(out, response, filtering, filtering.body, send);
}

/**
 * The head waits for the filters; the body streams behind it (or is dropped, when a filter answered with its own).
 * Undefined when the filters were done at once and left the body alone: the body then goes straight to `res`.
 */
function heldBody(res: Writable, response: FilterResponse, filtering: ResponseFiltering, send: () => void): Writable | undefined {
  let mode: 'held' | 'through' | 'drop' = 'held';
  let waiting: (() => void) | undefined;
  const release = () => {
    send();
    if (response.body === undefined) {
      mode = 'through';
    } else {
      mode = 'drop';
      res.end(response.body);
    }
  };
  // The writer is needed only when the filters did not finish at once (or replaced the body): it is made after them
  // (they report to it on a later tick at the earliest).
  const finishedAtOnce = applyFilters(filtering, response, release, (err) => (err ? writer.destroy(err) : waiting?.()));
  if (finishedAtOnce && response.body === undefined) return undefined;
  const writer: Writable = new Writable({
    write(chunk: Buffer, encoding, done) {
      if (mode === 'held') waiting = () => writer._write(chunk, encoding, done);
      else if (mode === 'through') forward(res, chunk, done);
      else done();
    },
    final(done) {
      if (mode === 'held') {
        waiting = () => writer._final(done);
        return;
      }
      if (mode === 'through') res.end();
      done();
    },
  });
  return writer;
}

function bufferedBody(res: Writable, response: FilterResponse, filtering: ResponseFiltering, buffering: ResponseBuffering, send: () => void): Writable {
  const chunks: Buffer[] = [];
  let size = 0;
  /** Over the cap with `pass`: the rest goes on (`through`), or is dropped when a filter answered with a body of its own. */
  let passing: 'through' | 'drop' | undefined;
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (passing === 'through') return forward(res, chunk, done);
      if (passing === 'drop') return done();
      size += chunk.length;
      chunks.push(chunk);
      if (size <= buffering.maxBytes) return done();
      if (buffering.oversize === 'reply502') {
        done(Object.assign(new Error(`the response body is larger than the ${buffering.maxBytes} bytes the filters read`), { code: RESPONSE_TOO_LARGE }));
        return;
      }
      // `pass`: the filters run on the head alone, and the body goes on as the app sent it.
      applyFilters(filtering, response, () => {
        send();
        if (response.body === undefined) {
          passing = 'through';
          for (const held of chunks.splice(0)) res.write(held);
        } else {
          passing = 'drop';
          res.end(response.body);
        }
      }, done);
    },
    final(done) {
      if (passing !== undefined) {
        if (passing === 'through') res.end();
        done();
        return;
      }
      response.body = Buffer.concat(chunks, size);
      applyFilters(filtering, response, () => {
        send();
        res.end(response.body);
      }, done);
    },
  });
}

/** Runs the response side, then `then`; `done` hears how it ended. Returns whether it all happened synchronously. */
function applyFilters(filtering: ResponseFiltering, response: FilterResponse, then: () => void, done: Done): boolean {
  let applied: void | Promise<void>;
  try {
    applied = filtering.apply(response);
    if (!(applied instanceof Promise)) {
      then();
      done();
      return true;
    }
  } catch (err) {
    // Reported on the next tick: the forwarder listens for the writer's errors once it has it.
    process.nextTick(done, asError(err));
    return false;
  }
  applied.then(
    () => {
      try {
        then();
      } catch (err) {
        done(asError(err));
        return;
      }
      done();
    },
    (err: unknown) => done(asError(err)),
  );
  return false;
}

function forward(res: Writable, chunk: Buffer, done: Done): void {
  if (res.write(chunk)) done();
  else res.once('drain', () => done());
}

/** Statuses that never carry a body (RFC 9110 6.4.1): no content-length is made up for them. */
function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
