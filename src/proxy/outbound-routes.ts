import { isIP } from 'node:net';
import { createSecureContext, type ConnectionOptions } from 'node:tls';
import { formatHostPort, type Limits, type OutboundRouteConfig } from '../config/index.js';
import type { IdentitySnapshot } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';
import { hostOf } from './authority.js';
import type { OutboundRoutes } from './outbound-listener.js';
import { expectSpiffeId } from './server-identity-check.js';
import { secureContextOptions, type TlsVersion } from './tls-options.js';
import { Http1Upstream } from './upstream-http1.js';
import { Http2Upstream } from './upstream-http2.js';
import type { Upstream } from './upstream.js';

// The outbound routes and the mTLS connection pools behind them. The pools hold this sidecar's SVID: when the SVID
// or the bundle changes, new pools are made for new requests and the old ones are closed once their requests in
// flight are done, so a rotation never fails a request. Each new HTTP/1.1 pool opens one connection at once
// (preconnect.ts): the first request after a start or a rotation finds it, and the next ones resume its session.

interface RouteUpstreams {
  http1: Http1Upstream;
  http2: Http2Upstream;
}

export class OutboundRouteTable implements OutboundRoutes {
  private upstreams: Map<string, RouteUpstreams>;

  constructor(
    private readonly routes: readonly OutboundRouteConfig[],
    private readonly trustDomain: string,
    private readonly minVersion: TlsVersion,
    private readonly limits: Limits,
    snapshot: IdentitySnapshot,
    private readonly logger: Logger,
  ) {
    this.upstreams = this.build(snapshot);
  }

  upstreamFor(host: string, port: number, http2: boolean): Upstream | undefined {
    const route = routeFor(this.upstreams, host, port);
    return route === undefined ? undefined : http2 ? route.http2 : route.http1;
  }

  upstreamOf(routeHost: string, http2: boolean): Upstream | undefined {
    const route = this.upstreams.get(routeHost);
    return route === undefined ? undefined : http2 ? route.http2 : route.http1;
  }

  update(snapshot: IdentitySnapshot): void {
    const old = this.upstreams;
    this.upstreams = this.build(snapshot);
    void closeAll(old).catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'closing old outbound pools failed'));
  }

  /** The end of a drain: whatever is still open is cut. */
  destroy(): Promise<void> {
    return Promise.all([...this.upstreams.values()].flatMap((r) => [r.http1.destroy(), r.http2.destroy()])).then(() => undefined);
  }

  private build(snapshot: IdentitySnapshot): Map<string, RouteUpstreams> {
    const table = new Map<string, RouteUpstreams>();
    const { limits } = this;
    // One context for every connection of every route: parsing the key and chains per connection would cost more
    // than the handshake's own crypto.
    const secureContext = createSecureContext(secureContextOptions(snapshot, this.minVersion));
    for (const route of this.routes) {
      const tls: ConnectionOptions = {
        secureContext,
        // SNI carries a name, never an IP address; identity is checked by SPIFFE ID either way.
        ...(isIP(hostOf(route.host)) === 0 ? { servername: hostOf(route.host) } : {}),
        checkServerIdentity: expectSpiffeId(route.spiffeId, this.trustDomain),
      };
      const address = formatHostPort(route.address);
      table.set(route.host, {
        http1: new Http1Upstream({
          address,
          tls,
          headersTimeoutMs: limits.requestTimeout,
          bodyTimeoutMs: limits.idleTimeout,
          keepAliveTimeoutMs: limits.idleTimeout,
          // The far end may not be up yet (sidecars start together): not worth more than a debug line.
          preconnect: (err, attempt) => this.logger.debug({ route: route.host, address, attempt, err: err.message }, 'opening a connection ahead failed'),
        }),
        http2: new Http2Upstream({ address, tls, headersTimeoutMs: limits.requestTimeout }),
      });
    }
    return table;
  }
}

/** A route written `HOST:PORT` is for calls to that port; one written `HOST` takes the host's calls to any other. */
export function routeFor<T>(table: ReadonlyMap<string, T>, host: string, port: number): T | undefined {
  return table.get(`${host}:${port}`) ?? table.get(host);
}

async function closeAll(table: Map<string, RouteUpstreams>): Promise<void> {
  await Promise.all([...table.values()].flatMap((r) => [r.http1.close(), r.http2.close()]));
}
