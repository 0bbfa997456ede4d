import type { ExtAuthzClient } from '../../authz/ext-authz/client.js';
import { replies } from '../local-reply.js';
import type { HttpFilter } from '../http-filter.js';

/**
 * A remote ext_authz server decides (Envoy's Check API). Its answer is applied as Envoy applies it: an allow may
 * set and remove upstream headers, a denial is sent to the client as given. A server that fails or does not answer
 * in time denies (503), unless `failOpen`; the inbound listener removes forged identity headers on every path regardless.
 * `observeLatency` gets the time each check took, failed checks included.
 */
export function extAuthzAuthorization(client: ExtAuthzClient, failOpen: boolean, observeLatency?: (ms: number) => void): HttpFilter {
  return {
    name: 'authz',
    onRequest: (ctx) => {
      const started = observeLatency === undefined ? 0 : performance.now();
      return client.check(ctx.request, { scheme: 'https' }).then((verdict) => {
        observeLatency?.(performance.now() - started);
        switch (verdict.kind) {
          case 'allow':
            ctx.decision = { outcome: 'allow', rule: 'remote' };
            ctx.setHeaders.push(...verdict.setHeaders);
            ctx.removeHeaders.push(...verdict.removeHeaders);
            return undefined;
          case 'deny': {
            ctx.decision = { outcome: 'deny', rule: 'remote' };
            const headers: Record<string, string> = {};
            for (const [name, value] of verdict.headers) headers[name] = value;
            return { status: verdict.httpStatus, headers, body: verdict.body };
          }
          case 'error':
            if (failOpen) {
              ctx.decision = { outcome: 'allow', rule: 'fail-open' };
              return undefined;
            }
            ctx.decision = { outcome: 'error', rule: 'error' };
            return replies.unavailable(ctx.requestId, 'the authorization service');
        }
      });
    },
  };
}
