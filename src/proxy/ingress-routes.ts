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

/** The first route for the normalised path and the method (headers tell a preflight), or undefined. */
export function matchRoute<R extends RouteMatch>(routes: readonly R[], path: string, method: string, headers: Readonly<Record<string, string | undefined>>): R | undefined {
  const asked = isPreflight(method, headers) ? headers['access-control-request-method'] : undefined;
  return routes.find(
    (route) =>
      underPrefix(path, route.prefix) &&
      (route.methods === undefined || route.methods.has(method) || (asked !== undefined && route.answersPreflights && route.methods.has(asked))),
  );
}
