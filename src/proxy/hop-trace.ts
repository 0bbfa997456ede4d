import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { traceContextOf, traceparentOf, redactedPath, type HopDirection, type TraceContext } from '../telemetry/index.js';
import type { HopContext } from '../filters/chain.js';

// The trace of one hop. Without a tracer (tracing off, the default) it only carries the W3C trace id: the caller's,
// or a new unsampled one the sidecar starts (trace-context.ts). With a tracer it records the spans of the hop: the
// hop itself (SERVER: the listener answering its caller), the authorization decision, and the upstream call
// (CLIENT), whose span id goes on in `traceparent` so that the next hop's spans hang under it. Span attributes
// follow the OpenTelemetry HTTP conventions; the query string is left out (it may carry credentials).

export class HopTrace {
  readonly traceId: string;
  private readonly context: TraceContext;
  private readonly hop: Span | undefined;
  private readonly hopContext: Context | undefined;
  private upstreamSpan: Span | undefined;

  constructor(
    header: string | string[] | undefined,
    private readonly tracer: Tracer | undefined,
    listener: HopDirection,
    request: { method: string; host: string; path: string; sourceIp?: string | undefined },
  ) {
    const context = traceContextOf(header);
    this.context = context;
    if (tracer === undefined) {
      this.traceId = context.traceId;
      return;
    }
    // The span's name and attributes are built only here: with tracing off the hot path spends nothing on them.
    const attributes = httpSpanAttributes(request.method, request.host, request.path, request.sourceIp);
    this.hop = tracer.startSpan(`${listener} ${request.method}`, { kind: SpanKind.SERVER, attributes }, parentOf(context));
    this.hopContext = trace.setSpan(ROOT_CONTEXT, this.hop);
    this.traceId = this.hop.spanContext().traceId;
  }

  /**
   * Whether the forwarded request gets a `traceparent` of the sidecar's (from `startUpstream`) in place of the
   * caller's: always when recording spans, else only when the sidecar started the trace.
   */
  get replacesTraceparent(): boolean {
    return this.hop !== undefined || this.context.started;
  }

  /** Starts the authorization span; the returned function ends it with the decision. */
  authorization(): ((outcome: string | undefined, rule: string | undefined) => void) | undefined {
    if (this.tracer === undefined) return undefined;
    const span = this.tracer.startSpan('authorize', { kind: SpanKind.INTERNAL }, this.hopContext);
    return (outcome, rule) => {
      if (outcome !== undefined) span.setAttribute('meshward.decision', outcome);
      if (rule !== undefined) span.setAttribute('meshward.rule', rule);
      span.end();
    };
  }

  /** Starts the upstream span (when tracing) and returns the `traceparent` to send, if it is to be replaced. */
  startUpstream(name: string, attributes: Attributes): string | undefined {
    if (this.tracer === undefined) return this.context.started ? this.context.traceparent : undefined;
    const span = this.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.hopContext);
    this.upstreamSpan = span;
    const { traceId, spanId, traceFlags } = span.spanContext();
    return traceparentOf(traceId, spanId, (traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED);
  }

  /** Whether spans are being recorded (a tracer is set): callers skip building span attributes otherwise. */
  get recording(): boolean {
    return this.hop !== undefined;
  }

  /** Ends the spans with the status the caller got (0: cut before an answer) and what else is known by then. */
  end(status: number, attributes: Attributes, error?: string): void {
    if (this.hop === undefined) return;
    if (this.upstreamSpan !== undefined) {
      finish(this.upstreamSpan, status, error);
      this.upstreamSpan = undefined;
    }
    this.hop.setAttributes(attributes);
    finish(this.hop, status, error);
  }
}

function finish(span: Span, status: number, error: string | undefined): void {
  if (status !== 0) span.setAttribute('http.response.status_code', status);
  // A server span is in error for 5xx only (a 4xx is the caller's mistake); a cut connection is an error.
  if (status === 0 || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(error !== undefined ? { message: error } : {}) });
  span.end();
}

function parentOf(context: TraceContext): Context {
  const { parent } = context;
  if (parent === undefined) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

/** Span attributes of an HTTP request, by the OpenTelemetry conventions; the path without its query string. */
function httpSpanAttributes(method: string, host: string, path: string, sourceIp?: string): Attributes {
  return {
    'http.request.method': method,
    'server.address': host,
    'url.path': redactedPath(path),
    ...(sourceIp !== undefined ? { 'client.address': sourceIp } : {}),
  };
}

/** The attributes a hop's span ends with: the request id, and who the chain found the caller to be and what it decided. */
export function hopSpanAttributes(ctx: HopContext): Record<string, string> {
  const attributes: Record<string, string> = { 'meshward.request_id': ctx.requestId };
  if (ctx.request.principal !== undefined) attributes['meshward.principal'] = ctx.request.principal;
  if (ctx.decision !== undefined) {
    attributes['meshward.decision'] = ctx.decision.outcome;
    attributes['meshward.rule'] = ctx.decision.rule;
  }
  return attributes;
}
