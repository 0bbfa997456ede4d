import { describe, expect, it } from 'vitest';
import { checkLine, GENESIS, sealRecord, verifyChain } from '../../src/telemetry/audit-chain.js';

function chain(n: number, prev = GENESIS): string[] {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const sealed = sealRecord({ seq: i, decision: i % 2 ? 'deny' : 'allow', path: `/p/${i}` }, prev);
    lines.push(sealed.line);
    prev = sealed.hash;
  }
  return lines;
}
const file = (lines: string[]) => [{ name: 'audit.jsonl', text: lines.map((l) => `${l}\n`).join('') }];

describe('audit hash chain', () => {
  it('seals a record as its JSON with prev appended, whatever its members, and checkLine reads it back', () => {
    const prev = 'a'.repeat(64);
    for (const record of [{}, { a: 1 }, { path: '/x"y', nested: { list: [1, 'two'] }, skipped: undefined }, { 'k\u2028': 'é' }]) {
      const { line, hash } = sealRecord(record, prev);
      expect(JSON.parse(line)).toEqual({ ...JSON.parse(JSON.stringify(record)), prev, hash });
      expect(line.startsWith(JSON.stringify({ ...record, prev }).slice(0, -1))).toBe(true);
      expect(checkLine(line)).toMatchObject({ ok: true, hash, prev });
    }
  });

  it('verifies an intact chain and reports its head', () => {
    const lines = chain(5);
    const report = verifyChain(file(lines));
    expect(report.problem).toBeUndefined();
    expect(report.records).toBe(5);
    expect(report.head).toBe((checkLine(lines[4]!) as { hash: string }).hash);
  });

  it('names the edited line', () => {
    const lines = chain(5);
    lines[2] = lines[2]!.replace('"decision":"allow"', '"decision":"deny"');
    expect(verifyChain(file(lines)).problem).toMatchObject({ line: 3, reason: expect.stringContaining('edited') });
  });

  it('names the line after a deletion, an insertion or a reorder', () => {
    const del = chain(5);
    del.splice(2, 1);
    expect(verifyChain(file(del)).problem).toMatchObject({ line: 3, reason: expect.stringContaining('deleted, inserted or moved') });

    const ins = chain(5);
    ins.splice(2, 0, sealRecord({ forged: true }, GENESIS).line);
    expect(verifyChain(file(ins)).problem?.line).toBe(3);

    const swap = chain(5);
    [swap[1], swap[2]] = [swap[2]!, swap[1]!];
    expect(verifyChain(file(swap)).problem?.line).toBe(2);
  });

  it('catches a re-hashed edit at the next link', () => {
    const lines = chain(4);
    const prev = (checkLine(lines[0]!) as { hash: string }).hash;
    lines[1] = sealRecord({ seq: 1, decision: 'allow', path: '/forged' }, prev).line;
    expect(verifyChain(file(lines)).problem).toMatchObject({ line: 3 });
  });

  it('follows the chain across rotated files, and anchors on the first file given', () => {
    const lines = chain(6);
    const files = [
      { name: 'a', text: lines.slice(0, 3).map((l) => `${l}\n`).join('') },
      { name: 'b', text: lines.slice(3).map((l) => `${l}\n`).join('') },
    ];
    expect(verifyChain(files).records).toBe(6);
    expect(verifyChain(files.slice(1)).problem).toBeUndefined();
    expect(verifyChain([files[1]!, files[0]!]).problem).toMatchObject({ file: 'a', line: 1 });
  });

  it('reports a torn last line', () => {
    const lines = chain(3);
    const text = `${lines.join('\n')}\n${lines[0]!.slice(0, 20)}`;
    expect(verifyChain([{ name: 'x', text }]).problem).toMatchObject({ line: 4, reason: expect.stringContaining('incomplete') });
  });
});
