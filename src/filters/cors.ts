import { applyCorsHeaders, corsPolicy, corsSettings, isPreflight, preflightReply, type CorsSettings } from './cors-policy.js';
import type { FilterFactory } from './http-filter.js';

// `cors`: answers browsers' preflights itself (they never reach the app) and puts the CORS headers on every answer
// to a request with an allowed Origin, local replies included (a page must be able to read a 401 or a 429). Put it
// before the filters that may refuse a request (apiKey, rateLimit, authz): a preflight carries no credentials.

export const cors: FilterFactory<CorsSettings> = {
  name: 'cors',
  settings: corsSettings,
  create(settings) {
    const policy = corsPolicy(settings);
    return {
      name: 'cors',
      onRequest: (ctx) => (isPreflight(ctx.request.method, ctx.request.headers) ? preflightReply(policy, ctx.request.headers, ctx.requestId) : undefined),
      onResponse(ctx, response) {
        // A preflight's answer is the filter's own, complete already.
        if (isPreflight(ctx.request.method, ctx.request.headers)) return;
        applyCorsHeaders(policy, ctx.request.headers.origin, response.headers);
      },
    };
  },
};
