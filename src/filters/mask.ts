import { z } from 'zod';
import { strictObject } from '../config/index.js';
import { jsonReply } from './local-reply.js';
import type { FilterFactory, FilterResponse } from './http-filter.js';
import { isJsonContentType } from './media-type.js';
import { removeRequestHeader, setRequestHeader } from './request-headers.js';

// `mask`: listed fields of JSON answers replaced before they leave (card numbers, national ids, tokens). It never
// sends a JSON answer it could not mask: one over the buffer cap is a 502 (unless `onOversize: pass`), and so is one
// that is no JSON after all or that the app compressed. So that the app does not compress, the filter asks it for
// `accept-encoding: identity`, and for whole answers (no `range`); meshward does not compress answers itself, so
// clients get them uncompressed. Answers that are not JSON (by content-type) stream untouched.

/** Whether a JSON path is one the masker takes: from the root, selecting inside the document, no expressions. */
export function jsonPathProblem(path: string): string | undefined {
  if (!path.startsWith('$') || path.trim() === '$') return 'must start with "$" and select something inside the document';
  if (/[()]/.test(path)) return 'filter and script expressions (?(...), (...)) are not supported';
  return undefined;
}

const field = strictObject({
  name: z.string().min(1).optional(),
  path: z
    .string()
    .superRefine((path, ctx) => {
      const problem = jsonPathProblem(path);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  mode: z.enum(['full', 'partial']).default('full'),
}).refine((f) => (f.name === undefined) !== (f.path === undefined), { message: 'give either name or path' });

const settings = strictObject({
  fields: z.array(field).min(1),
  /** The largest JSON answer masked; a larger one is a 502, or passes unmasked with `onOversize: pass`. */
  maxBytes: z.number().int().positive().default(1024 * 1024),
  onOversize: z.enum(['reply502', 'pass']).default('reply502'),
});

export type MaskSettings = z.output<typeof settings>;

/** Headers that describe the app's bytes, which masking changes. */
const DIGEST_HEADERS = ['content-length', 'content-md5', 'digest', 'content-digest', 'repr-digest'];

/** Turns the answer into a 502 that says why; none of the app's headers or bytes go out with it. */
function refuse(response: FilterResponse, requestId: string, reason: string): void {
  const reply = jsonReply(502, { error: 'bad_gateway', reason, requestId });
  response.status = reply.status;
  response.headers = { 'content-type': 'application/json' };
  response.body = Buffer.from(reply.body);
}

export const mask: FilterFactory<MaskSettings> = {
  name: 'mask',
  settings,
  async create(config) {
    // Loaded only where a listener masks: the JSON path library is no cost to a sidecar without the filter.
    const { jsonMasker } = await import('./json-mask.js');
    const masked = jsonMasker(config.fields);
    return {
      name: 'mask',
      responseBody: {
        maxBytes: config.maxBytes,
        oversize: config.onOversize,
        when: (response) => isJsonContentType(response.headers['content-type']),
      },
      onRequest(ctx) {
        setRequestHeader(ctx, 'accept-encoding', 'identity');
        // A byte range of a JSON answer can be a field's value alone (`"123-45-6789"` is a whole JSON document), or
        // come as multipart/byteranges: the app is asked for the whole answer, which the mask can read.
        removeRequestHeader(ctx, 'range');
        removeRequestHeader(ctx, 'if-range');
        return undefined;
      },
      onResponse(ctx, response) {
        if (!isJsonContentType(response.headers['content-type'])) return;
        // A HEAD answer has no body to mask; its length and digests would be those of the unmasked one.
        if (ctx.request.method === 'HEAD') {
          for (const name of DIGEST_HEADERS) delete response.headers[name];
          return;
        }
        // Not buffered: over the cap with `onOversize: pass`; else a runtime that did not buffer it must not send it.
        if (response.body === undefined) {
          if (config.onOversize !== 'pass') refuse(response, ctx.requestId, 'the answer could not be masked');
          return;
        }
        if (response.body.length === 0) return;
        const encoding = response.headers['content-encoding'];
        if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') {
          refuse(response, ctx.requestId, 'the app compressed an answer that must be masked');
          return;
        }
        let text: string;
        try {
          text = masked(response.body.toString('utf8'));
        } catch {
          refuse(response, ctx.requestId, 'the answer says it is JSON but is not, so it cannot be masked');
          return;
        }
        for (const name of DIGEST_HEADERS) delete response.headers[name];
        response.body = Buffer.from(text);
        response.headers['content-length'] = String(response.body.length);
      },
    };
  },
};
