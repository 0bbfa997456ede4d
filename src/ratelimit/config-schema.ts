// envoyproxy/ratelimit's configuration format, read as it reads it, so that a team's existing files work unchanged:
//
//   domain: <name>
//   descriptors:
//     - key: <key>                  required
//       value: <value>              optional; without it the entry matches any value (each value counted apart)
//       rate_limit:                 optional; without it (and without descriptors) the entry limits nothing
//         unit: second | minute | hour | day | month | year    (any case)
//         requests_per_unit: <0 … 2^32-1>
//         unlimited: true           instead of unit and requests_per_unit: matched, never counted
//         name: <name>              for `replaces`
//         replaces: [{ name: <name> }]
//       shadow_mode: true           counted and reported, never refused
//       detailed_metric: true       (accepted; meshward's metrics never carry descriptor values)
//       descriptors: [ … ]          nested entries, for descriptors of more than one entry
//
// One file may hold several domains as YAML documents separated by `---`. Unknown keys are errors, as there.
import { z } from 'zod';
import { strictObject } from '../config/index.js';
import { TIME_UNITS, type TimeUnit } from './time-unit.js';

const UINT32_MAX = 4_294_967_295;

/** Keys and values are strings, but YAML reads `value: 443` as a number: taken as written, as the Go loader does. */
const text = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const unit = z.string().transform((value, ctx): TimeUnit => {
  const upper = value.toUpperCase();
  if (!(TIME_UNITS as readonly string[]).includes(upper)) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a unit; use one of ${TIME_UNITS.map((u) => u.toLowerCase()).join(', ')}` });
    return z.NEVER;
  }
  return upper as TimeUnit;
});

const rateLimit = strictObject({
  unit: unit.optional(),
  requests_per_unit: z.number().int('must be a whole number').min(0).max(UINT32_MAX).optional(),
  unlimited: z.boolean().optional(),
  name: z.string().min(1).optional(),
  replaces: z.array(strictObject({ name: z.string().min(1, 'must name the limit it replaces') })).optional(),
}).superRefine((limit, ctx) => {
  if (limit.unlimited) {
    if (limit.unit !== undefined) ctx.addIssue({ code: 'custom', path: ['unit'], message: 'must not be given with unlimited: true' });
    if (limit.requests_per_unit !== undefined) ctx.addIssue({ code: 'custom', path: ['requests_per_unit'], message: 'must not be given with unlimited: true' });
  } else {
    if (limit.unit === undefined) ctx.addIssue({ code: 'custom', path: ['unit'], message: 'is required (or unlimited: true)' });
    if (limit.requests_per_unit === undefined) ctx.addIssue({ code: 'custom', path: ['requests_per_unit'], message: 'is required (0 refuses every request)' });
  }
  limit.replaces?.forEach((entry, i) => {
    if (entry.name === limit.name) ctx.addIssue({ code: 'custom', path: ['replaces', i, 'name'], message: 'must not be the limit\'s own name' });
  });
});

export interface DescriptorInput {
  key: string;
  value?: string | undefined;
  rate_limit?: z.output<typeof rateLimit> | undefined;
  shadow_mode?: boolean | undefined;
  detailed_metric?: boolean | undefined;
  descriptors?: DescriptorInput[] | undefined;
}

const descriptors: z.ZodType<DescriptorInput[], unknown> = z.lazy(() =>
  z
    .array(
      strictObject({
        key: text.pipe(z.string().min(1)),
        value: text.optional(),
        rate_limit: rateLimit.optional(),
        shadow_mode: z.boolean().optional(),
        detailed_metric: z.boolean().optional(),
        descriptors: descriptors.optional(),
      }),
    )
    .superRefine((list, ctx) => {
      // Entries of one list are told apart by key and value: two alike would leave one of them unreachable.
      const seen = new Set<string>();
      list.forEach((entry, i) => {
        const id = entry.value === undefined ? entry.key : `${entry.key}_${entry.value}`;
        if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i], message: `a second entry for key "${entry.key}"${entry.value === undefined ? ' without a value' : ` and value "${entry.value}"`}` });
        seen.add(id);
      });
    }),
);

export const domainConfigSchema = strictObject({
  domain: text.pipe(z.string().min(1)),
  descriptors: descriptors.optional(),
});

export type DomainConfigInput = z.output<typeof domainConfigSchema>;
