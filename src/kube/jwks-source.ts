import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

// Where the cluster issuer's public keys come from: its OIDC discovery document, a JWKS URL, or a JWKS file. The
// remote sources are jose's RemoteJWKSet (cached for ten minutes, refetched at once for an unknown key ID, at most
// every 30 s). Fetches go through node:https so that they can trust the cluster's CA and send a bearer token: the
// API server serves /openid/v1/jwks only to authenticated callers (any service account, by default RBAC).

const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Statuses a Response must be made without a body for. */
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

export interface IssuerFetchOptions {
  /** Extra PEM roots for https (in a pod: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt). */
  caPem?: string;
  /** A file holding a bearer token, read at each fetch because the kubelet rotates it. */
  bearerTokenFile?: string;
  timeoutMs?: number;
}

export type KeySource = { discovery: true } | { jwksUrl: string } | { jwksFile: string };

/** A fetch for jose and for discovery: GET only, no redirects followed, bounded size and time. */
function issuerFetch(opts: IssuerFetchOptions) {
  return async (url: string, init: { headers?: Headers; signal?: AbortSignal } = {}): Promise<Response> => {
    const target = new URL(url);
    const headers: Record<string, string> = { accept: 'application/json' };
    init.headers?.forEach((value, name) => (headers[name] = value));
    if (opts.bearerTokenFile) headers.authorization = `Bearer ${(await readFile(opts.bearerTokenFile, 'utf8')).trim()}`;
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        target,
        { method: 'GET', headers, timeout: opts.timeoutMs ?? 5000, signal: init.signal, ...(opts.caPem && target.protocol === 'https:' ? { ca: opts.caPem } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_DOCUMENT_BYTES) req.destroy(new Error(`${url}: the response is over ${MAX_DOCUMENT_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 502;
            resolve(new Response(NULL_BODY_STATUS.has(status) ? null : Buffer.concat(chunks), { status }));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${opts.timeoutMs ?? 5000} ms`)));
      req.on('error', reject);
      req.end();
    });
  };
}

/**
 * The JWKS URL an issuer publishes in its discovery document. The document's `issuer` must be the one asked
 * about (OpenID Connect Discovery 1.0, section 4.3), or the keys could be another issuer's.
 */
async function discoverJwksUri(issuer: string, fetchJson: ReturnType<typeof issuerFetch>): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const res = await fetchJson(url);
  if (res.status !== 200) throw new Error(`${url} answered HTTP ${res.status}`);
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    doc = (await res.json()) as typeof doc;
  } catch {
    throw new Error(`${url} is not JSON`);
  }
  if (doc.issuer !== issuer) throw new Error(`${url} names the issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}`);
  if (typeof doc.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`);
  return doc.jwks_uri;
}

/**
 * A jose key resolver for the issuer's tokens. Discovery happens on first use and is retried on the next use if it
 * failed, so a CA that starts before the API server answers recovers by itself.
 */
export async function issuerKeys(issuer: string, source: KeySource, fetchOpts: IssuerFetchOptions = {}): Promise<JWTVerifyGetKey> {
  if ('jwksFile' in source) {
    const text = await readFile(source.jwksFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`${source.jwksFile}: cannot read the JWKS: ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
    });
    try {
      return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
    } catch (err) {
      throw new Error(`${source.jwksFile}: not a JWKS: ${(err as Error).message}`);
    }
  }
  const fetcher = issuerFetch(fetchOpts);
  const remote = (url: string) =>
    createRemoteJWKSet(new URL(url), { timeoutDuration: fetchOpts.timeoutMs ?? 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000, [customFetch]: fetcher });
  if ('jwksUrl' in source) return remote(source.jwksUrl);

  let keys: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    keys ??= remote(await discoverJwksUri(issuer, fetcher));
    return keys(header, token);
  };
}
