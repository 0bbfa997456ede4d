import { resolve } from 'node:path';
import { z } from 'zod';
import { strictObject } from '../config/index.js';
import { jsonReply, type LocalReply } from '../proxy/local-reply.js';
import type { HopContext } from './chain.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';
import { loadOpenApi, type OpenApi } from './openapi-document.js';
import { checkRequest } from './openapi-request.js';
import { WatchedFile } from './watched-file.js';

// `validate`: requests checked against an OpenAPI 3.0 or 3.1 document before they reach the app (Kong's
// oas-validation, Tyk's validate-request): unknown path 404, wrong method 405, undeclared content type 415, and
// parameters or a JSON body that break their schemas 400 with the list of problems. The body is read (up to
// `maxBodyBytes`, more is 413) before anything parses it. The document is compiled once per load and reloaded when
// its file changes; a broken edit keeps the last good one.

const settings = strictObject({
  /** The OpenAPI document (YAML or JSON), relative to the config file's directory. */
  openapi: z.string().min(1),
  maxBodyBytes: z.number().int().positive().default(1024 * 1024),
});

export type ValidateSettings = z.output<typeof settings>;

export function validateRequest(ctx: HopContext, api: OpenApi): LocalReply | undefined {
  const { request, requestId } = ctx;
  const verdict = checkRequest(api, { method: request.method, target: request.path, headers: request.headers, body: ctx.body });
  if (verdict.ok) return undefined;
  ctx.decision = { outcome: 'invalid', rule: 'validate' };
  switch (verdict.status) {
    case 404:
      return jsonReply(404, { error: 'not_found', reason: verdict.reason, requestId });
    case 405:
      return jsonReply(405, { error: 'method_not_allowed', reason: verdict.reason, requestId }, { allow: verdict.allow });
    case 415:
      return jsonReply(415, { error: 'unsupported_media_type', reason: verdict.reason, requestId });
    case 400:
      return jsonReply(400, { error: 'bad_request', reason: verdict.reason, ...(verdict.problems.length > 0 ? { errors: verdict.problems } : {}), requestId });
  }
}

export const validate: FilterFactory<ValidateSettings> = {
  name: 'validate',
  settings,
  async create(config, env): Promise<HttpFilter> {
    const api = await WatchedFile.open(resolve(env.configDir, config.openapi), loadOpenApi, env.logger, 'OpenAPI document');
    return {
      name: 'validate',
      requestBody: { maxBytes: config.maxBodyBytes },
      onRequest: (ctx) => validateRequest(ctx, api.current),
      close: () => api.close(),
    };
  },
};
