// One line of the demo's table: what was sent, as whom, what came back, and why; `ok` says whether that is what
// the mesh promises (a demo that is also a smoke test).

export interface Row {
  request: string;
  as: string;
  result: string;
  why: string;
  ok: boolean;
  /** What should have happened, shown when `ok` is false. */
  expected: string;
}

const COLUMNS = ['request', 'as', 'result', 'why'] as const;

/** The rows as a plain-text table, columns separated by `|`. Pure. */
export function renderTable(rows: readonly Row[]): string {
  const cells = rows.map((row) => COLUMNS.map((key) => row[key]));
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: readonly string[], mark: string) =>
    `${mark.padEnd(6)}${values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join(' | ')}`.trimEnd();
  return [
    line(COLUMNS, ''),
    `${''.padEnd(6)}${widths.map((w) => '-'.repeat(w)).join('-+-')}`,
    ...rows.map((row, i) => line(cells[i]!, row.ok ? 'ok' : 'FAIL')),
  ].join('\n');
}
