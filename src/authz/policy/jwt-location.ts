import type { PolicyJwt } from './schema.js';

// Where a JWT travels, as the `jwt` settings say: `authorization: Bearer <token>` unless configured otherwise. The
// JWT filter reads a token from there (filters/jwt); `meshward policy test` and `explain` put one there.

/** The auth scheme before the token: Bearer for `authorization`, none for other headers, unless configured. */
export function tokenScheme(config: Pick<PolicyJwt, 'header' | 'scheme'>): string {
  return config.scheme ?? (config.header === 'authorization' ? 'Bearer' : '');
}

/** The header that carries `token`. */
export function tokenHeader(config: Pick<PolicyJwt, 'header' | 'scheme'>, token: string): [name: string, value: string] {
  const scheme = tokenScheme(config);
  return [config.header, scheme === '' ? token : `${scheme} ${token}`];
}
