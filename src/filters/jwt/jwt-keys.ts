import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { PolicyJwt } from '../../authz/index.js';

/**
 * The keys JWTs are verified with: a JWKS URL (fetched on first use and on an unknown `kid`, by `remote`), or a JWKS
 * file read now (relative to `baseDir`). Throws an Error naming the file when it is unusable.
 */
export function jwtKeys(jwt: Pick<PolicyJwt, 'jwksUri' | 'jwksFile'>, baseDir: string, remote: (uri: string) => JWTVerifyGetKey = (uri) => createRemoteJWKSet(new URL(uri))): JWTVerifyGetKey {
  if (jwt.jwksUri !== undefined) return remote(jwt.jwksUri);
  const file = resolve(baseDir, jwt.jwksFile!);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${file}: file not found` : `${file}: ${(err as Error).message}`);
  }
  try {
    return parseJwks(text);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

/** A JWKS document's keys; throws an Error saying what is wrong with it. */
export function parseJwks(text: string): JWTVerifyGetKey {
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  try {
    return createLocalJWKSet(jwks as JSONWebKeySet);
  } catch (err) {
    throw new Error(`not a JSON Web Key Set: ${(err as Error).message}`);
  }
}
