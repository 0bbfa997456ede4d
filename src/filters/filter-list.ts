import { pathToFileURL } from 'node:url';
import { FieldError, formatPath, plainIssueMessage, type ConfigProblem, type FilterEntry } from '../config/index.js';
import type { FilterFactory } from './http-filter.js';
import { builtInFilter, registry } from './registry.js';

// A listener's `filters:` list, from config entries to factories with checked settings. Every problem is found
// before anything is built, and each is named by its path in the config file:
//   sidecar.yaml: inbound.filters[2].rateLimit.limits[0].requestsPerSecond: must be greater than 0

/** One filter of a chain as the config plans it. */
export interface PlannedFilter {
  readonly factory: FilterFactory;
  /** Checked by the factory's schema (its output). */
  readonly settings: unknown;
  /** Where the config gives it: errors while building it name this path. */
  readonly at: ReadonlyArray<PropertyKey>;
}

/** The filters every listener builds itself, from its own settings and in a fixed place; a list cannot name them. */
const FIXED: Readonly<Record<string, string>> = {
  headerChecks: 'it is always the first filter of a listener (set it with headersWithUnderscores)',
  limits: 'it always comes right after the header checks (set it with limits)',
  peerAuthentication: 'every inbound chain authenticates its peer right after the limits, before any filter reads who the caller is',
};

export class ConfigProblems {
  readonly list: ConfigProblem[] = [];

  add(path: ReadonlyArray<PropertyKey>, message: string): void {
    this.list.push({ path, message });
  }

  /** Throws every problem found so far as one FieldError (the CLI names the file). */
  throwIfAny(): void {
    const [first, ...others] = this.list;
    if (first !== undefined) throw new FieldError(first.path, first.message, others);
  }
}

/**
 * Resolves a list: a name to its built-in factory, a module to its default export; settings checked by the
 * factory's schema. `presets` are settings given elsewhere on the listener (already checked): an entry of that name
 * with no settings of its own takes them. `known` is every filter the list names, its settings right or wrong.
 */
export async function planFilterList(
  entries: readonly FilterEntry[],
  at: ReadonlyArray<PropertyKey>,
  problems: ConfigProblems,
  presets: Readonly<Record<string, { settings: unknown; from: string }>> = {},
): Promise<{ planned: PlannedFilter[]; known: Map<string, FilterFactory> }> {
  const planned: PlannedFilter[] = [];
  const known = new Map<string, FilterFactory>();
  const seen = new Map<string, number>();
  for (const [i, entry] of entries.entries()) {
    const where = [...at, i];
    let factory: FilterFactory | undefined;
    let settingsAt: PropertyKey[];
    if ('module' in entry) {
      factory = await importFactory(entry.module, [...where, 'module'], problems);
      settingsAt = [...where, 'settings'];
      if (factory !== undefined && builtInFilter(factory.name) !== undefined) {
        problems.add([...where, 'module'], `the module's filter is named "${factory.name}", as a built-in filter is; give it a name of its own`);
        continue;
      }
    } else {
      settingsAt = [...where, entry.name];
      if (Object.hasOwn(FIXED, entry.name)) {
        problems.add(settingsAt, `"${entry.name}" cannot be listed: ${FIXED[entry.name]}`);
        continue;
      }
      factory = builtInFilter(entry.name);
      if (factory === undefined) {
        problems.add(settingsAt, `no built-in filter is named "${entry.name}" (${listable().join(', ')}); a custom filter is "- module: ./file.mjs"`);
        continue;
      }
    }
    if (factory === undefined) continue;
    const earlier = seen.get(factory.name);
    if (earlier !== undefined) {
      problems.add(settingsAt, `the chain has a "${factory.name}" filter already (${formatPath([...at, earlier])}); one filter may carry several settings instead`);
      continue;
    }
    seen.set(factory.name, i);
    known.set(factory.name, factory);
    const preset = Object.hasOwn(presets, factory.name) ? presets[factory.name] : undefined;
    if (preset !== undefined) {
      if (isEmpty(entry.settings)) {
        planned.push({ factory, settings: preset.settings, at: settingsAt });
      } else {
        problems.add(settingsAt, `its settings are given by ${preset.from} already; give them in one place`);
      }
      continue;
    }
    const settings = checkSettings(factory, entry.settings, settingsAt, problems);
    if (settings.ok) planned.push({ factory, settings: settings.value, at: settingsAt });
  }
  return { planned, known };
}

/** The settings as the factory's schema reads them, or its problems, each named by its path. */
export function checkSettings(factory: FilterFactory, given: unknown, at: ReadonlyArray<PropertyKey>, problems: ConfigProblems): { ok: true; value: unknown } | { ok: false } {
  const parsed = factory.settings.safeParse(given, { error: plainIssueMessage });
  if (parsed.success) return { ok: true, value: parsed.data };
  for (const issue of parsed.error.issues) problems.add([...at, ...issue.path], issue.message);
  return { ok: false };
}

/** A custom filter: an ES module (trusted as the config is) whose default export is a FilterFactory. */
async function importFactory(file: string, at: PropertyKey[], problems: ConfigProblems): Promise<FilterFactory | undefined> {
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    problems.add(at, `${file} cannot be loaded: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  const factory = loaded.default;
  if (!isFactory(factory)) {
    problems.add(at, `${file} does not export a filter: its default export must be a FilterFactory (name, settings: a zod schema, create)`);
    return undefined;
  }
  return factory;
}

function isFactory(value: unknown): value is FilterFactory {
  const candidate = value as Partial<FilterFactory> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.name === 'string' &&
    /^[A-Za-z][A-Za-z0-9_-]*$/.test(candidate.name) &&
    typeof candidate.settings?.safeParse === 'function' &&
    typeof candidate.create === 'function'
  );
}

function isEmpty(settings: unknown): boolean {
  return settings === null || settings === undefined || (typeof settings === 'object' && Object.keys(settings).length === 0);
}

/** The built-in names a list may use. */
function listable(): string[] {
  return Object.keys(registry).filter((name) => !Object.hasOwn(FIXED, name));
}
