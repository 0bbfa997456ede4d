// One Process stream: one HTTP request through Envoy, run through a listener's chain. Envoy sends what it has
// (request_headers, request_body, request_trailers, response_headers, response_body, response_trailers) and waits
// for the matching answer to each, in order; this runs the chain on it and answers.
//
// - request_headers: the request side runs. A filter that reads the body (validate) makes the answer ask Envoy for
//   the whole body (mode_override: request_body_mode BUFFERED) and the chain goes on when request_body brings it.
//   A local reply becomes an ImmediateResponse, after the response side ran on it (CORS headers on a 401); the
//   request's changes become the answer's HeaderMutation (and body mutation).
// - response_headers: the response side runs, or, when a filter reads the body (mask) and wants this response,
//   the answer asks for the whole body (response_body_mode BUFFERED) and it runs on response_body.
// - trailers, and bodies nobody asked for (Envoy configured to send them anyway), are answered unchanged.
// - When the chain has no response side, the answer to request_headers tells Envoy not to send the response
//   (response_header_mode SKIP): nothing there for meshward to do.
// Mode overrides take effect only where the ext_proc filter has allow_mode_override: true (deploy/envoy/).
//
// A message that is not one of these, or that comes out of order, ends the stream with INVALID_ARGUMENT, and Envoy
// answers the client 500 (its filter fails closed unless failure_mode_allow). A filter that fails answers 500, as on
// a listener. response_headers may come first: Envoy sends it alone for a local reply made before its ext_proc filter
// ran; no filter's request side ran then, so none has a response side to run.
import { status } from '@grpc/grpc-js';
import {
  replies,
  replyResponse,
  runRequestSide,
  runResponseSide,
  type BodyReader,
  type Chain,
  type FilterResponse,
  type HopContext,
  type HopDecision,
  type LocalReply,
} from '../filters/index.js';
import { GrpcStatusError } from '../grpc/index.js';
import type { Logger } from '../telemetry/index.js';
import { firstValue, listedHeaders, receivedHeaders } from './header-map.js';
import type { CommonResponse, HttpBodyMessage, HttpHeadersMessage, ProcessingMode, ProcessingRequestMessage, ProcessingResponseMessage, RequestKind } from './messages.js';
import { immediateResponse, requestChanges, responseHeaderMutation } from './mutations.js';
import { hopContextOf } from './request-context.js';

/** ProcessingMode values. */
const SEND = 1;
const SKIP = 2;
const NONE = 0;
const BUFFERED = 2;
const CONTINUE_AND_REPLACE = 1;

/** Where the exchange is: which messages may come next. */
type Phase = 'start' | 'requestBody' | 'request' | 'requestTrailers' | 'responseBody' | 'response' | 'done';

const MAY_COME_IN: Readonly<Record<RequestKind, readonly Phase[]>> = {
  requestHeaders: ['start'],
  requestBody: ['requestBody', 'request'],
  requestTrailers: ['request'],
  responseHeaders: ['start', 'request', 'requestTrailers'],
  responseBody: ['responseBody', 'response'],
  responseTrailers: ['response'],
};

const EXPECTED: Readonly<Record<Phase, string>> = {
  start: 'request_headers (or response_headers for a local reply)',
  requestBody: 'request_body, which the answer to request_headers asked for',
  request: 'request_body, request_trailers or response_headers',
  requestTrailers: 'response_headers',
  responseBody: 'response_body, which the answer to response_headers asked for',
  response: 'response_body or response_trailers',
  done: 'nothing more: the exchange is over',
};

/** What became of one request, once its stream is over. */
export interface ProcessOutcome {
  decision: HopDecision | undefined;
  /** The status the client was sent: meshward's own answer's, or the app's as it passed; 0 when not seen. */
  status: number;
}

export interface ProcessStreamOptions {
  chain: Chain;
  /** The config's limits.maxBodyBytes: no filter reads a larger request body (413). */
  maxBodyBytes: number;
  logger: Logger;
  send(response: ProcessingResponseMessage): void;
}

interface Pending {
  answered(): void;
  failed(err: unknown): void;
}

export class ProcessStream {
  private phase: Phase = 'start';
  private ctx: HopContext | undefined;
  private rawValues = false;
  private receivedPath = '';
  private receivedBody: Buffer | undefined;
  private answering: 'requestHeaders' | 'requestBody' = 'requestHeaders';
  private bodyArrived: ((body: Buffer) => void) | undefined;
  /** A response whose body was asked for: the response side runs on it when the body comes. */
  private held: FilterResponse | undefined;
  private pending: Pending | undefined;
  private statusSent = 0;

  constructor(private readonly options: ProcessStreamOptions) {}

  /** What became of the request; undefined when none came. */
  get outcome(): ProcessOutcome | undefined {
    return this.phase === 'start' ? undefined : { decision: this.ctx?.decision, status: this.statusSent };
  }

  /** Handles one message; settles once it is answered. Rejects with a GrpcStatusError for a protocol violation. */
  handle(message: ProcessingRequestMessage): Promise<void> {
    if (message.observabilityMode) {
      throw refusal('observability_mode is on, so nothing meshward answers would be applied: turn it off in the ext_proc filter');
    }
    const kind = message.request;
    if (!kind) throw refusal('the ProcessingRequest carries none of request_headers, request_body, request_trailers, response_headers, response_body, response_trailers');
    if (!MAY_COME_IN[kind].includes(this.phase)) throw refusal(`${snakeCase(kind)} came out of order: expected ${EXPECTED[this.phase]}`);
    return new Promise<void>((answered, failed) => {
      this.pending = { answered, failed };
      this.dispatch(kind, message);
    });
  }

  private dispatch(kind: RequestKind, message: ProcessingRequestMessage): void {
    switch (kind) {
      case 'requestHeaders':
        return this.onRequestHeaders(message.requestHeaders!, message.attributes);
      case 'requestBody':
        return this.onRequestBody(message.requestBody!);
      case 'requestTrailers':
        this.phase = 'requestTrailers';
        return this.answer({ requestTrailers: {} });
      case 'responseHeaders':
        return this.onResponseHeaders(message.responseHeaders!);
      case 'responseBody':
        return this.onResponseBody(message.responseBody!);
      case 'responseTrailers':
        this.phase = 'done';
        return this.answer({ responseTrailers: {} });
    }
  }

  private onRequestHeaders(message: HttpHeadersMessage, attributes: ProcessingRequestMessage['attributes']): void {
    const received = receivedHeaders(message.headers);
    const mapped = hopContextOf(received, attributes);
    if (!mapped.ok) throw refusal(mapped.reason);
    const ctx = mapped.ctx;
    this.ctx = ctx;
    this.phase = 'request';
    this.rawValues = received.rawValues;
    this.receivedPath = ctx.request.path;
    const readBody: BodyReader = (maxBytes) => {
      if (message.endOfStream) return Promise.resolve((this.receivedBody = Buffer.alloc(0)));
      this.phase = 'requestBody';
      this.answer({ requestHeaders: {}, modeOverride: this.modeFor(true) });
      this.answering = 'requestBody';
      const cap = Math.min(maxBytes, this.options.maxBodyBytes);
      return new Promise((resolve) => (this.bodyArrived = (body) => resolve(body.length > cap ? undefined : body)));
    };
    this.settle(
      () => runRequestSide(this.options.chain, ctx, readBody),
      (reply) => (reply === undefined ? this.forward(ctx) : this.reply(ctx, reply)),
      (err) => this.reply(ctx, this.failure(ctx, err)),
    );
  }

  private onRequestBody(message: HttpBodyMessage): void {
    if (this.phase !== 'requestBody') return this.answer({ requestBody: {} });
    const body = Buffer.from(message.body ?? []);
    this.receivedBody = body;
    this.bodyArrived!(body);
  }

  /** The request goes on to the app, with the chain's changes. */
  private forward(ctx: HopContext): void {
    const bodyChanged = ctx.body !== undefined && ctx.body !== this.receivedBody;
    if (bodyChanged) ctx.setHeaders.push(['content-length', String(ctx.body!.length)]);
    const { headerMutation, clearRouteCache } = requestChanges(ctx, this.receivedPath, this.rawValues);
    const response: CommonResponse = { headerMutation, ...(clearRouteCache ? { clearRouteCache } : {}) };
    if (bodyChanged) response.bodyMutation = { body: ctx.body! };
    this.phase = 'request';
    if (this.answering === 'requestBody') return this.answer({ requestBody: { response } });
    // Answering the headers: a body set where the request had none replaces it (CONTINUE_AND_REPLACE).
    if (bodyChanged) response.status = CONTINUE_AND_REPLACE;
    const modeOverride = this.modeFor(false);
    this.answer({ requestHeaders: { response }, ...(modeOverride ? { modeOverride } : {}) });
  }

  private onResponseHeaders(message: HttpHeadersMessage): void {
    const received = receivedHeaders(message.headers);
    const statusText = firstValue(received.raw, ':status');
    if (statusText === undefined || !/^[1-5]\d\d$/.test(statusText)) throw refusal('response_headers has no valid :status');
    this.statusSent = Number(statusText);
    this.phase = 'response';
    const { chain } = this.options;
    const ctx = this.ctx;
    if (ctx === undefined || ctx.filtersEntered === 0 || !chain.hasResponseSide) return this.answer({ responseHeaders: {} });
    const response: FilterResponse = { status: this.statusSent, headers: listedHeaders(received.raw) };
    const buffering = chain.responseBody;
    if (buffering !== undefined && buffering.wanted(response)) {
      if (!message.endOfStream) {
        this.held = response;
        this.phase = 'responseBody';
        return this.answer({ responseHeaders: {}, modeOverride: { responseBodyMode: BUFFERED } });
      }
      response.body = Buffer.alloc(0);
    }
    this.respond(ctx, response, 'responseHeaders');
  }

  private onResponseBody(message: HttpBodyMessage): void {
    const { held, ctx } = this;
    if (this.phase !== 'responseBody' || held === undefined || ctx === undefined) return this.answer({ responseBody: {} });
    this.held = undefined;
    const body = Buffer.from(message.body ?? []);
    const buffering = this.options.chain.responseBody!;
    if (body.length <= buffering.maxBytes) held.body = body;
    // Over the cap: 502, never the body unfiltered; or, with `pass`, the filters see the head alone and it goes on.
    else if (buffering.oversize === 'reply502') return this.reply(ctx, replies.badGateway(ctx.requestId));
    this.respond(ctx, held, 'responseBody');
  }

  /** The response side on the app's answer; its changes go back as a mutation (a changed status as an answer of meshward's own). */
  private respond(ctx: HopContext, response: FilterResponse, answering: 'responseHeaders' | 'responseBody'): void {
    const before = { status: response.status, headers: { ...response.headers }, body: response.body };
    this.settle(
      () => runResponseSide(this.options.chain, ctx, response),
      () => {
        if (response.status !== before.status) return this.immediate(response);
        const bodyChanged = response.body !== undefined && response.body !== before.body;
        if (bodyChanged) response.headers['content-length'] = String(response.body!.length);
        const headerMutation = responseHeaderMutation(before.headers, response.headers, this.rawValues);
        const common: CommonResponse = { ...(headerMutation ? { headerMutation } : {}) };
        if (bodyChanged) {
          common.bodyMutation = { body: response.body! };
          // On the headers: the app's body is dropped for this one.
          if (answering === 'responseHeaders') common.status = CONTINUE_AND_REPLACE;
        }
        this.phase = 'response';
        this.answer(answering === 'responseHeaders' ? { responseHeaders: { response: common } } : { responseBody: { response: common } });
      },
      (err) => this.immediate(replyResponse(this.failure(ctx, err))),
    );
  }

  /** A local reply, through the response side of the filters whose request side ran, as Envoy's immediate response. */
  private reply(ctx: HopContext, reply: LocalReply): void {
    const response = replyResponse(reply);
    this.settle(
      () => runResponseSide(this.options.chain, ctx, response),
      () => this.immediate(response),
      (err) => this.immediate(replyResponse(this.failure(ctx, err))),
    );
  }

  private immediate(response: FilterResponse): void {
    this.phase = 'done';
    this.statusSent = response.status;
    this.answer({ immediateResponse: immediateResponse(response, this.rawValues, 'meshward_local_reply') });
  }

  private failure(ctx: HopContext, err: unknown): LocalReply {
    this.options.logger.error({ requestId: ctx.requestId, err: err instanceof Error ? err.message : String(err) }, 'a filter failed; the request is refused');
    return replies.internal(ctx.requestId);
  }

  /**
   * What the answer to request_headers asks of Envoy for the rest of this request, when it is not the default: the
   * whole request body, and no response headers when no filter has a response side.
   */
  private modeFor(requestBody: boolean): ProcessingMode | undefined {
    const responseSide = this.options.chain.hasResponseSide;
    if (!requestBody && responseSide) return undefined;
    return { requestBodyMode: requestBody ? BUFFERED : NONE, responseHeaderMode: responseSide ? SEND : SKIP };
  }

  private answer(response: ProcessingResponseMessage): void {
    this.options.send(response);
    this.pending?.answered();
  }

  /** Runs a step that may be synchronous or not; whatever goes wrong after a step began fails the stream. */
  private settle<T>(step: () => T | Promise<T>, then: (value: T) => void, failed: (err: unknown) => void): void {
    let result: T | Promise<T>;
    try {
      result = step();
    } catch (err) {
      return failed(err);
    }
    if (!(result instanceof Promise)) return then(result);
    const guarded = (action: () => void) => {
      try {
        action();
      } catch (err) {
        this.pending?.failed(err);
      }
    };
    result.then(
      (value) => guarded(() => then(value)),
      (err: unknown) => guarded(() => failed(err)),
    );
  }
}

function refusal(message: string): GrpcStatusError {
  return new GrpcStatusError(status.INVALID_ARGUMENT, message);
}

function snakeCase(kind: RequestKind): string {
  return kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
