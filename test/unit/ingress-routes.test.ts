import { describe, expect, it } from 'vitest';
import { matchRoute, routeDependsOnCase, underPrefix, type RouteMatch } from '../../src/proxy/ingress-routes.js';

// Which ingress route a request takes (proxy/ingress-routes.ts): prefixes by whole segments, methods, first match
// wins, and a CORS preflight matched by the method it asks about where the route's chain answers preflights.

const route = (prefix: string, methods?: string[], answersPreflights = false): RouteMatch & { name: string } => ({
  name: `${prefix} ${methods?.join(',') ?? '*'}${answersPreflights ? ' cors' : ''}`,
  prefix,
  methods: methods === undefined ? undefined : new Set(methods),
  answersPreflights,
});

describe('ingress routes', () => {
  it('match a prefix by whole segments', () => {
    expect(underPrefix('/api', '/api')).toBe(true);
    expect(underPrefix('/api/', '/api')).toBe(true);
    expect(underPrefix('/api/orders', '/api')).toBe(true);
    expect(underPrefix('/apix', '/api')).toBe(false);
    expect(underPrefix('/ap', '/api')).toBe(false);
    expect(underPrefix('/api', '/api/')).toBe(false);
    expect(underPrefix('/api/x', '/api/')).toBe(true);
    expect(underPrefix('/anything', '/')).toBe(true);
    expect(underPrefix('/', '/')).toBe(true);
  });

  it('take the first route whose prefix and methods match', () => {
    const routes = [route('/api/orders', ['GET']), route('/api', ['GET', 'POST']), route('/')];
    const pick = (method: string, path: string) => matchRoute(routes, path, method, {})?.name;
    expect(pick('GET', '/api/orders/1')).toBe('/api/orders GET');
    expect(pick('POST', '/api/orders/1')).toBe('/api GET,POST');
    expect(pick('DELETE', '/api/orders/1')).toBe('/ *');
    expect(pick('get', '/api/orders/1')).toBe('/ *');
    expect(matchRoute([route('/api', ['GET'])], '/api', 'HEAD', {})).toBeUndefined();
    expect(matchRoute([route('/api')], '/other', 'GET', {})).toBeUndefined();
  });

  it("match a CORS preflight by the method it asks about, only where the route's chain answers preflights", () => {
    const preflight = { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' };
    expect(matchRoute([route('/api', ['GET', 'PUT'], true)], '/api/x', 'OPTIONS', preflight)?.name).toBe('/api GET,PUT cors');
    // Without cors the app would get an OPTIONS the route does not take; another method's preflight finds nothing.
    expect(matchRoute([route('/api', ['GET', 'PUT'])], '/api/x', 'OPTIONS', preflight)).toBeUndefined();
    expect(matchRoute([route('/api', ['GET'], true)], '/api/x', 'OPTIONS', preflight)).toBeUndefined();
    // An OPTIONS that is no preflight (no Origin) is an OPTIONS.
    expect(matchRoute([route('/api', ['GET', 'PUT'], true)], '/api/x', 'OPTIONS', { 'access-control-request-method': 'PUT' })).toBeUndefined();
  });

  it('tell a path that takes another route when its case is ignored (as Express and ASP.NET Core ignore it)', () => {
    const routes = [route('/admin', ['GET']), route('/')];
    const depends = (path: string, list = routes) => routeDependsOnCase(list, path, 'GET', {}, matchRoute(list, path, 'GET', {}));
    expect(depends('/ADMIN')).toBe(true);
    expect(depends('/Admin/users')).toBe(true);
    expect(depends('/admin/Users')).toBe(false);
    expect(depends('/Orders')).toBe(false);
    expect(depends('/admin')).toBe(false);
    // A prefix written with capitals: the lower-case spelling is the one that would slip by.
    expect(depends('/reports', [route('/Reports'), route('/', ['POST'])])).toBe(true);
    expect(depends('/Reports', [route('/Reports'), route('/', ['POST'])])).toBe(false);
  });
});
