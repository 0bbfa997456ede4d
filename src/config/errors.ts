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
