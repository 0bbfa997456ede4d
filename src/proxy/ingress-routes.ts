import { isPreflight } from '../filters/index.js';

// Which ingress route a request takes: the first whose path prefix and methods match, in the config's order. Pure.
//
// The path matched is the normalised one (the listener refuses a target it cannot normalise), and whole segments
// count: `/api` takes `/api` and `/api/x`, never `/apix`, so that `/public/../admin` and `/publicity` reach no route
// of `/public`. A browser's CORS preflight (OPTIONS, asking whether another method may follow) is matched by the
// method it asks about, on a route whose chain answers preflights (it has a cors filter): the preflight of a PUT
// goes where the PUT would go, and is answered there without reaching the app.

export interface RouteMatch {
  /** A normalised path; `/` takes everything. */
  readonly prefix: string;
  /** Undefined: any method. */
  readonly methods: ReadonlySet<string> | undefined;
  /** The route's chain answers CORS preflights itself. */
  readonly answersPreflights: boolean;
}

/** Whether a normalised path is the prefix or under it, whole segments. */
export function underPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

/**
 * The first route for the normalised path and the method (headers tell a preflight), or undefined. `ignoreCase`
 * compares the path with the prefixes as apps that ignore its letters' case do (Express, ASP.NET Core).
 */
export function matchRoute<R extends RouteMatch>(
  routes: readonly R[],
  path: string,
  method: string,
  headers: Readonly<Record<string, string | undefined>>,
  ignoreCase = false,
): R | undefined {
  const asked = isPreflight(method, headers) ? headers['access-control-request-method'] : undefined;
  const spelled = ignoreCase ? path.toLowerCase() : path;
  return routes.find(
    (route) =>
      underPrefix(spelled, ignoreCase ? route.prefix.toLowerCase() : route.prefix) &&
      (route.methods === undefined || route.methods.has(method) || (asked !== undefined && route.answersPreflights && route.methods.has(asked))),
  );
}

const CAPITAL = /[A-Z]/;

/**
 * Whether the path takes another route when its letters' case is ignored (`/ADMIN/users` where `/admin` is a route):
 * an app that ignores case serves it from a route the edge did not choose, so it cannot be routed one way only.
 */
export function routeDependsOnCase<R extends RouteMatch>(routes: readonly R[], path: string, method: string, headers: Readonly<Record<string, string | undefined>>, chosen: R | undefined): boolean {
  if (!CAPITAL.test(path) && !routes.some((route) => CAPITAL.test(route.prefix))) return false;
  return matchRoute(routes, path, method, headers, true) !== chosen;
}
