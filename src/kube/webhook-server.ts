import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { admit } from './admission.js';
import type { InjectOptions } from './inject.js';

// The mutating admission webhook on HTTPS: POST /mutate answers AdmissionReviews, GET /healthz answers probes.
// Every failure is an HTTP answer, never a crash: a webhook with failurePolicy Fail that goes down stops every pod
// in the namespaces it serves from being created.

/** The API server caps a request at 3 MiB; an AdmissionReview carries one object, so this is ample. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface WebhookTls {
  cert: Buffer;
  key: Buffer;
}

export interface WebhookServerOptions {
  host: string;
  port: number;
  tls: WebhookTls;
  inject: Omit<InjectOptions, 'namespace'>;
  logger: Logger;
}

export interface WebhookServer {
  /** host:port as bound (port 0 resolved). */
  address: string;
  /** New serving certificate for new connections; open ones keep theirs. */
  setTls(tls: WebhookTls): void;
  close(): Promise<void>;
}

// The API server speaks TLS 1.2 or 1.3 to webhooks. A new secure context replaces every option in it, so the
// minimum version goes with the certificate each time.
const secureContext = (tls: WebhookTls) => ({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' as const });

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `the request body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `the request body is not JSON: ${(err as Error).message}`);
  }
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const { logger } = opts;

  async function mutate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const outcome = admit(await readJson(req), opts.inject);
    if (!outcome.ok) throw new HttpError(400, outcome.reason);
    logger.info(outcome.summary, 'admission review answered');
    sendJson(res, 200, outcome.review);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET');
      return sendJson(res, 200, { status: 'ok' });
    }
    if (path === '/mutate') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST with an AdmissionReview');
      return mutate(req, res);
    }
    throw new HttpError(404, 'not found: the webhook serves POST /mutate and GET /healthz');
  }

  const server: Server = createServer(
    {
      ...secureContext(opts.tls),
      headersTimeout: 10_000,
      requestTimeout: 30_000,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) {
          logger.warn({ status: err.status, path: req.url, reason: err.message }, 'request refused');
          if (!res.headersSent) sendJson(res, err.status, { error: err.message });
          else res.destroy();
          return;
        }
        logger.error({ err }, 'admission failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    },
  );
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return {
    address,
    setTls(tls) {
      server.setSecureContext(secureContext(tls));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
