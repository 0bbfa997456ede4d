import { apiKey } from './api-key.js';
import { authz } from './authz/authz-filter.js';
import { cors } from './cors.js';
import { headers } from './headers.js';
import type { FilterFactory } from './http-filter.js';
import { ipList } from './ip-list.js';
import { mask } from './mask.js';
import { jwt } from './jwt/jwt-filter.js';
import { peerAuthentication } from './peer-authentication.js';
import { rateLimit } from './rate-limit/rate-limit-filter.js';
import { headerChecks } from './request-header-checks.js';
import { limits } from './request-limits.js';
import { validate } from './validate.js';

// Every built-in filter, by the name a `filters:` list uses. A filter is added by writing one file that exports a
// FilterFactory and one line here (docs/filters.md).

export const registry: Readonly<Record<string, FilterFactory>> = {
  headerChecks,
  limits,
  peerAuthentication,
  authz,
  apiKey,
  cors,
  validate,
  mask,
  headers,
  ipList,
  jwt,
  rateLimit,
};

/** The factory a name stands for, or undefined (own properties only: `constructor` is no filter). */
export function builtInFilter(name: string): FilterFactory | undefined {
  return Object.hasOwn(registry, name) ? registry[name] : undefined;
}
