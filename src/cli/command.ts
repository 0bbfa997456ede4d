import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { packagePath } from '../package-root.js';

/** A subcommand: its help text and an entry point that returns the process exit code. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** Raised for a wrong invocation; main prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, strict, with errors turned into UsageErrors a person can act on. */
export function parseFlags<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === '') throw new UsageError(`missing required flag --${flag}`);
  return value;
}

/** Runs the subcommand named by argv[0] from `table`; a missing or unknown one is a UsageError naming the choices. */
export async function runSubcommand(argv: string[], table: Record<string, (rest: string[]) => number | Promise<number>>): Promise<number> {
  const [sub, ...rest] = argv;
  const run = sub !== undefined && Object.hasOwn(table, sub) ? table[sub] : undefined;
  if (!run) {
    const choices = Object.keys(table).join(', ');
    throw new UsageError(sub ? `unknown subcommand "${sub}" (one of: ${choices})` : `a subcommand is required (one of: ${choices})`);
  }
  return run(rest);
}

/** `--listen HOST:PORT` (or [IPv6]:PORT); port 0 asks the system for a free port. */
export function parseListenAddress(value: string, flag = 'listen'): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UsageError(`--${flag} "${value}" is not HOST:PORT (or [IPv6]:PORT) with a port from 0 to 65535`);
  return { host: match[1] ?? match[2]!, port };
}

/** The package's version, as `meshward --version` prints it. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}
