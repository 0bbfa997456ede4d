// Sums a sampling heap profile (bench/fixtures/alloc-probe.mjs) by the function that allocated (self) and by every
// function on the stack (total), largest first: `node bench/alloc-summary.mjs FILE [N]`.
import { readFileSync } from 'node:fs';

const [file, top = '40'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const self = new Map();
const total = new Map();
let all = 0;
const nameOf = (f) => `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
function walk(node, stack) {
  const name = nameOf(node.callFrame);
  const size = node.selfSize;
  all += size;
  self.set(name, (self.get(name) ?? 0) + size);
  const sub = node.children.reduce((sum, child) => sum + walk(child, [...stack, name]), size);
  if (!stack.includes(name)) total.set(name, (total.get(name) ?? 0) + sub);
  return sub;
}
walk(profile.head, []);
const print = (title, map) => {
  console.log(`\n${title} (of ${(all / 1e6).toFixed(1)} MB sampled)`);
  for (const [name, size] of [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
    console.log(`${(size / 1e6).toFixed(2).padStart(8)} MB ${((100 * size) / all).toFixed(1).padStart(5)}%  ${name}`);
  }
};
print('self', self);
print('total', total);
