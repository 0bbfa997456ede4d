// Check, from bytes to bytes: decode, map, decide, answer, log. Fails closed at every step: whatever cannot
// be decoded, mapped or decided is answered with a denial (a CheckResponse, never a failed call).
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../telemetry/index.js';
import { FAIL_CLOSED_RULE } from '../policy/index.js';
import type { AuthzRequest, Decision } from '../types.js';
import { toAuthzRequest, type CheckRequestMessage } from './check-request.js';
import { allowResponse, badRequestResponse, buildCheckResponse, type CheckResponseMessage } from './check-response.js';
import type { ActivePolicy } from './policy-reloader.js';
import type { CheckTypes } from './protos.js';
import type { UnaryBytesHandler } from '../../grpc/unary-route.js';

export function checkHandler(types: CheckTypes, currentPolicy: () => ActivePolicy, logger: Logger): UnaryBytesHandler {
  const encode = (response: CheckResponseMessage) => types.CheckResponse.encode(response).finish();
  const allowResponses = new AllowResponseCache(encode);

  return async (bytes) => {
    let message: CheckRequestMessage;
    try {
      message = types.CheckRequest.decode(bytes) as CheckRequestMessage;
    } catch (err) {
      const requestId = randomUUID();
      const reason = `CheckRequest does not decode: ${(err as Error).message}`;
      logger.warn({ requestId, reason }, 'malformed CheckRequest denied');
      return encode(badRequestResponse(reason, requestId));
    }
    const mapped = toAuthzRequest(message, randomUUID);
    if (!mapped.ok) {
      logger.warn({ requestId: mapped.requestId, reason: mapped.reason }, 'malformed CheckRequest denied');
      return encode(badRequestResponse(mapped.reason, mapped.requestId));
    }
    const { request, requestId } = mapped;
    const policy = currentPolicy();
    let decision: Decision;
    try {
      decision = await policy.engine.decide(request);
    } catch (err) {
      // The engine promises never to throw; if one does anyway, deny as the engine itself does on an error.
      logger.error({ requestId, err: (err as Error).message }, 'policy engine failed; denied');
      decision = { kind: 'deny', rule: FAIL_CLOSED_RULE, reason: 'policy engine failed' };
    }
    logDecision(logger, request, requestId, decision);
    if (decision.kind === 'allow') return allowResponses.get(decision.principal);
    return encode(buildCheckResponse(decision, { requestId, explainDenials: policy.explainDenials }));
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
  // The path without its query string: queries can carry tokens, which never go into a log.
  const query = request.path.indexOf('?');
  const path = query === -1 ? request.path : request.path.slice(0, query);
  const fields = { requestId, principal: request.principal, method: request.method, host: request.host, path };
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
