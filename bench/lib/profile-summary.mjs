// Summarise a V8 CPU profile (`node --cpu-prof`): self time by function and by package/file, and
// total (inclusive) time of the functions whose name matches --match.
//
//   node bench/lib/profile-summary.mjs PROFILE.cpuprofile [--top 25] [--match regex]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, match: { type: 'string' } },
});
if (positionals.length !== 1) {
  console.error('usage: node bench/lib/profile-summary.mjs PROFILE.cpuprofile [--top 25] [--match regex]');
  process.exit(2);
}
const TOP = Number(args.top);
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample time: timeDeltas[i] belongs to samples[i].
const selfUs = new Map();
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  totalUs += dt;
}

function where(frame) {
  const url = frame.url || '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return url;
  const d = /\/dist\/(.*)$/.exec(url);
  if (d) return `dist/${d[1]}`;
  return url || '(native)';
}
const label = (frame) => `${frame.functionName || '(anonymous)'} ${where(frame)}:${frame.lineNumber + 1}`;

const fnSelf = new Map();
const fileSelf = new Map();
for (const [id, us] of selfUs) {
  const f = byId.get(id).callFrame;
  fnSelf.set(label(f), (fnSelf.get(label(f)) ?? 0) + us);
  const file = ['(idle)', '(program)', '(garbage collector)'].includes(f.functionName) ? f.functionName : where(f);
  fileSelf.set(file, (fileSelf.get(file) ?? 0) + us);
}

const pct = (us) => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const print = (title, map) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${ms(us)} ${pct(us)}  ${k}`);
};
console.log(`profile: ${(totalUs / 1e6).toFixed(2)} s sampled`);
print('self time by package / file', fileSelf);
print('self time by function', fnSelf);

if (args.match) {
  // Inclusive time: a sample counts once for each matching function on its stack.
  const re = new RegExp(args.match);
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      const key = label(f);
      if (!seen.has(key) && re.test(key)) {
        seen.add(key);
        incl.set(key, (incl.get(key) ?? 0) + us);
      }
    }
  }
  print(`inclusive time of functions matching /${args.match}/`, incl);
}
