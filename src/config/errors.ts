// Config errors name the file, the path inside it and the reason:
//   policy.yaml: rules[2].from.principals[0]: "spiffe:/x" is not a SPIFFE ID

export interface ConfigProblem {
  /** Path inside the document, e.g. ['rules', 2, 'from', 'principals', 0]. */
  path: ReadonlyArray<PropertyKey>;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = formatPath(problem.path);
  return where === '' ? `${file}: ${problem.message}` : `${file}: ${where}: ${problem.message}`;
}

/**
 * A problem with one field of a loaded config that shows only when it is used (a file that does not hold what it
 * should, a port already taken). It names the field; whoever knows which file the config came from names that
 * too, by turning it into a ConfigError.
 */
export class FieldError extends Error {
  constructor(
    readonly path: ReadonlyArray<PropertyKey>,
    message: string,
    /** More problems found with it, each named by its own path (every wrong filter setting, not only the first). */
    readonly others: readonly ConfigProblem[] = [],
  ) {
    super(message);
    this.name = 'FieldError';
  }

  inFile(file: string): ConfigError {
    return new ConfigError(file, [{ path: this.path, message: this.message }, ...this.others]);
  }
}
