// A custom filter (docs/filters.md): an ES module whose default export is a FilterFactory. A listener runs it when
// its config lists it, with a path relative to the config file:
//
//   inbound:
//     filters:
//       - module: ./custom-filter.mjs
//         settings: { header: x-tenant, tenants: [blue, green] }
//
// It refuses a request that does not name one of the tenants in a header (400, before the app or any later filter
// sees it), tells the app which tenant called, and says on every answer, its own refusals included, which tenant it
// served. The module is trusted as the config is: it runs in the sidecar with the sidecar's rights.
import { z } from 'zod';

export default {
  name: 'tenant',
  // Checked when the config loads (`meshward sidecar --check-config` too); errors name the setting's path.
  settings: z.strictObject({
    header: z.string().regex(/^[a-z0-9-]+$/, 'must be a lower-case header name').default('x-tenant'),
    tenants: z.array(z.string().min(1)).min(1, 'name at least one tenant'),
  }),
  create(settings, env) {
    const tenants = new Set(settings.tenants);
    env.logger.info({ listener: env.listener, tenants: settings.tenants }, 'tenant filter ready');
    return {
      name: 'tenant',
      // Synchronous: a chain of synchronous filters costs no promise per request.
      onRequest(ctx) {
        const tenant = ctx.request.headers[settings.header];
        if (!tenants.has(tenant)) {
          // A local reply: status, headers, body. The response side of the filters that ran still sees it.
          return {
            status: 400,
            body: JSON.stringify({ error: 'bad_request', reason: `the ${settings.header} header must name a tenant`, requestId: ctx.requestId }),
          };
        }
        ctx.setHeaders.push(['x-tenant-checked', tenant]);
        return undefined;
      },
      onResponse(ctx, response) {
        response.headers['x-served-tenant'] = ctx.request.headers[settings.header] ?? 'none';
      },
    };
  },
};
