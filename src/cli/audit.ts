import { readFile } from 'node:fs/promises';
import { verifyChain } from '../telemetry/audit-chain.js';
import { runSubcommand, UsageError, type Command } from './command.js';

const USAGE = `
Usage: meshward audit verify FILE...

  Verifies a tamper-evident audit log: every record's hash, and the chain of "prev" links across the files,
  given oldest first (rotated files sort by name: \`meshward audit verify audit.jsonl.* audit.jsonl\`).
  Exits 0 when intact, printing the head hash (compare it with the one the writer logged to detect truncation);
  exits 1 naming the first bad file and line.
`;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'verify tamper-evident audit logs',
  usage: USAGE,
  run: (argv) => runSubcommand(argv, { verify }),
};

async function verify(files: string[]): Promise<number> {
  if (files.length === 0) throw new UsageError('name at least one audit log file');
  const texts = await Promise.all(
    files.map(async (name) => {
      try {
        return { name, text: await readFile(name, 'utf8') };
      } catch (err) {
        throw new Error(`${name}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}`);
      }
    }),
  );
  const report = verifyChain(texts);
  if (report.problem) {
    const { file, line, reason } = report.problem;
    process.stderr.write(`${file}:${line}: ${reason}\n${report.records} record(s) before it verified.\n`);
    return 1;
  }
  process.stdout.write(`OK: ${report.records} record(s) in ${files.length} file(s) form one intact chain\nhead ${report.head}\n`);
  return 0;
}
