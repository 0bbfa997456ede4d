// Check, from bytes to bytes: decode, map, decide, answer, log, observe. Fails closed at every step: whatever cannot
// be decoded, mapped or decided is answered with a denial (a CheckResponse, never a failed call). Every answer,
// denials of malformed requests included, is passed to `observe` once (metrics, audit: check-observer.ts).
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { Logger } from '../../telemetry/index.js';
import { FAIL_CLOSED_RULE } from '../policy/index.js';
import type { AuthzRequest, Decision } from '../types.js';
import { redactedPath } from '../../telemetry/index.js';
import type { CheckObserver } from './check-observer.js';
import { toAuthzRequest, type CheckRequestMessage } from './check-request.js';
import { allowResponse, buildCheckResponse, type CheckResponseMessage } from './check-response.js';
import type { ActivePolicy } from '../policy-reloader.js';
import type { CheckTypes } from './protos.js';
import type { UnaryBytesHandler } from '../../grpc/unary-route.js';

const HTTP_OK = 200;

export interface CheckHandlerOptions {
  currentPolicy: () => ActivePolicy;
  logger: Logger;
  observe: CheckObserver;
}

/** What was decided about one CheckRequest, before it is answered. */
interface Judged {
  requestId: string;
  request?: AuthzRequest;
  decision: Decision;
  decisionMs?: number;
  explainDenials: boolean;
}

export function checkHandler(types: CheckTypes, { currentPolicy, logger, observe }: CheckHandlerOptions): UnaryBytesHandler {
  const encode = (response: CheckResponseMessage) => types.CheckResponse.encode(response).finish();
  const allowResponses = new AllowResponseCache(encode);

  const answer = (judged: Judged, received: number): Uint8Array => {
    const { requestId, request, decision, decisionMs } = judged;
    let bytes: Uint8Array;
    let grpcStatus = status.OK;
    let httpStatus = HTTP_OK;
    if (decision.kind === 'allow') {
      bytes = allowResponses.get(decision.principal);
    } else {
      const response = buildCheckResponse(decision, { requestId, explainDenials: judged.explainDenials });
      bytes = encode(response);
      grpcStatus = response.status.code;
      httpStatus = response.deniedResponse?.status.code ?? HTTP_OK;
    }
    observe({ requestId, request, decision, decisionMs, grpcStatus, httpStatus, latencyMs: performance.now() - received, time: Date.now() });
    return bytes;
  };
  const malformed = (requestId: string, reason: string, received: number): Uint8Array => {
    logger.warn({ requestId, reason }, 'malformed CheckRequest denied');
    return answer({ requestId, decision: { kind: 'invalid', reason }, explainDenials: false }, received);
  };

  return async (bytes) => {
    const received = performance.now();
    let message: CheckRequestMessage;
    try {
      message = types.CheckRequest.decode(bytes) as CheckRequestMessage;
    } catch (err) {
      return malformed(randomUUID(), `CheckRequest does not decode: ${(err as Error).message}`, received);
    }
    const mapped = toAuthzRequest(message, randomUUID);
    if (!mapped.ok) return malformed(mapped.requestId, mapped.reason, received);
    const { request, requestId } = mapped;
    const policy = currentPolicy();
    let decision: Decision;
    const deciding = performance.now();
    try {
      decision = await policy.engine.decide(request);
    } catch (err) {
      // The engine promises never to throw; if one does anyway, deny as the engine itself does on an error.
      logger.error({ requestId, err: (err as Error).message }, 'policy engine failed; denied');
      decision = { kind: 'deny', rule: FAIL_CLOSED_RULE, reason: 'policy engine failed' };
    }
    const decisionMs = performance.now() - deciding;
    logDecision(logger, request, requestId, decision);
    return answer({ requestId, request, decision, decisionMs, explainDenials: policy.explainDenials }, received);
  };
}

/**
 * Envoys send the same few principals over and over: each one's allow is encoded once, not on every Check.
 * Bounded, since principals come from the network.
 */
class AllowResponseCache {
  private static readonly MAX_ENTRIES = 10_000;
  private readonly encoded = new Map<string | undefined, Uint8Array>();

  constructor(private readonly encode: (response: CheckResponseMessage) => Uint8Array) {}

  get(principal: string | undefined): Uint8Array {
    let bytes = this.encoded.get(principal);
    if (bytes === undefined) {
      bytes = this.encode(allowResponse(principal));
      if (this.encoded.size >= AllowResponseCache.MAX_ENTRIES) this.encoded.clear();
      this.encoded.set(principal, bytes);
    }
    return bytes;
  }
}

function logDecision(logger: Logger, request: AuthzRequest, requestId: string, decision: Decision): void {
  // A plain allow is the common case and logged only at debug: build nothing for it unless that is on.
  if (decision.kind === 'allow' && !decision.dryRun && !decision.audit && !logger.isLevelEnabled('debug')) return;
  const fields = { requestId, principal: request.principal, method: request.method, host: request.host, path: redactedPath(request.path) };
  switch (decision.kind) {
    case 'allow':
      if (decision.dryRun || decision.audit) logger.info({ ...fields, rule: decision.rule, dryRun: decision.dryRun, audit: decision.audit }, 'allowed');
      else logger.debug({ ...fields, rule: decision.rule }, 'allowed');
      return;
    case 'deny':
      logger.info({ ...fields, rule: decision.rule, reason: decision.reason, dryRun: decision.dryRun, audit: decision.audit }, 'denied');
      return;
    case 'unauthenticated':
      logger.info({ ...fields, reason: decision.reason }, 'unauthenticated');
      return;
    case 'invalid':
      logger.info({ ...fields, reason: decision.reason }, 'invalid request denied');
      return;
    case 'rate_limited':
      logger.info({ ...fields, limit: decision.limit, retryAfterSeconds: decision.retryAfterSeconds }, 'rate limited');
      return;
  }
}
