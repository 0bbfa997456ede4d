import { resolve } from 'node:path';
import { z } from 'zod';
import { strictObject } from '../config/index.js';
import type { FilterFactory, HttpFilter } from './http-filter.js';
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

export const validate: FilterFactory<ValidateSettings> = {
  name: 'validate',
  settings,
  async create(config, env): Promise<HttpFilter> {
    // ajv and the OpenAPI schemas are loaded only where a listener validates: no cost to a sidecar without it.
    const [{ loadOpenApi }, { checkRequest, verdictReply }] = await Promise.all([import('./openapi-document.js'), import('./openapi-request.js')]);
    const api = await WatchedFile.open(resolve(env.configDir, config.openapi), loadOpenApi, env.logger, 'OpenAPI document');
    return {
      name: 'validate',
      requestBody: { maxBytes: config.maxBodyBytes },
      onRequest(ctx) {
        const { request, requestId } = ctx;
        const verdict = checkRequest(api.current, { method: request.method, target: request.path, headers: request.headers, body: ctx.body });
        if (verdict.ok) return undefined;
        ctx.decision = { outcome: 'invalid', rule: 'validate' };
        return verdictReply(verdict, requestId);
      },
      reload: () => api.reload(),
      close: () => api.close(),
    };
  },
};
