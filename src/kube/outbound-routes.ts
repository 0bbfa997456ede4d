import { parse } from 'yaml';
import { z } from 'zod';
import { parseSpiffeId } from '../spiffe/id.js';
import { isHostPort } from './host-port.js';
import { ManifestError, type ManifestPath } from './manifest.js';

export interface OutboundRoute {
  host: string;
  address: string;
  spiffeId: string;
}

const routesSchema = z.array(
  z.strictObject({
    host: z.string().min(1, 'must name the Host the app calls'),
    address: z.string().refine(isHostPort, 'must be HOST:PORT: the destination\'s Service and port when its pod captures traffic (the default), else its sidecar\'s inbound listener (port 15006)'),
    spiffeId: z.string().superRefine((value, ctx) => {
      const id = parseSpiffeId(value);
      if (!id.ok) ctx.addIssue({ code: 'custom', message: id.error });
    }),
  }),
);

/**
 * The `meshward.io/outbound-routes` annotation: a JSON or YAML list of routes, the same shape as the sidecar's
 * `outbound.routes`. Without it the sidecar denies all egress through its outbound listener (its default).
 */
export function parseOutboundRoutes(value: unknown, where: ManifestPath): OutboundRoute[] {
  if (value === undefined) return [];
  if (typeof value !== 'string') throw new ManifestError(where, 'must be a string holding a JSON or YAML list');
  let data: unknown;
  try {
    data = parse(value);
  } catch (err) {
    throw new ManifestError(where, `is not JSON or YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = routesSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ManifestError([...where, ...(issue.path as (string | number)[])], issue.message);
  }
  return result.data;
}
