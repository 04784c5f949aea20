// `npm run bench`: every benchmark in sequence, with moderate defaults, each in its own process (so
// one that fails does not take the others down, and each cleans up after itself). Each prints its
// table and appends a dated row to docs/BENCHMARKS.md.
//
//   node bench/run-all.mjs [--only lifecycle,dispatch,…] [--quick]
//
// --quick shrinks every benchmark (for a smoke run; the rows it records say so by their sizes).
// bench/request-cost.bench.mjs is not among them: it needs valgrind and runs for many minutes.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false } } });

const FULL = {
  // Three rounds of ours and bare alternately: one pair's ratio moves with the machine's drift. With
  // the durable floors in each round: how close to bare a durable server can come in that round.
  lifecycle: ['--seconds', '20', '--rounds', '3', '--durable-floor'],
  dispatch: ['--jobs', '200', '--poll-jobs', '20'],
  outputs: ['--mib', '1024'],
  idle: ['--seconds', '60'],
  journal: ['--jobs', '500', '--noop-jobs', '20'],
  'live-log': ['--mib-per-s', '50', '--seconds', '60'],
  'dashboard-table': ['--jobs', '100000'],
  scale: ['--nodes', '1000,5000,10000', '--jobs', '100'],
  depth: [],
};
const QUICK = {
  lifecycle: ['--seconds', '5'],
  dispatch: ['--jobs', '20', '--poll-jobs', '2'],
  outputs: ['--mib', '64', '--rounds', '1'],
  idle: ['--seconds', '10'],
  journal: ['--jobs', '50', '--noop-jobs', '3'],
  'live-log': ['--mib-per-s', '50', '--seconds', '10'],
  'dashboard-table': ['--jobs', '10000'],
  scale: ['--nodes', '1000', '--jobs', '20'],
  depth: ['--ended', '100000', '--waiting', '1000', '--samples', '60', '--cli-runs', '3'],
};
const PLAN = args.quick ? QUICK : FULL;
// A whole benchmark may not run longer than this (the poll-mode dispatch is the slowest).
const LIMIT_MS = { lifecycle: 8, dispatch: 20, outputs: 20, idle: 10, journal: 5, 'live-log': 15, 'dashboard-table': 5, scale: 20, depth: 20 };

const names = args.only ? args.only.split(',').map((s) => s.trim()) : Object.keys(PLAN);
for (const name of names) if (!(name in PLAN)) throw new Error(`--only: unknown benchmark '${name}' (${Object.keys(PLAN).join(', ')})`);

function run(name) {
  return new Promise((resolve) => {
    const file = new URL(`./${name}.bench.mjs`, import.meta.url).pathname;
    const child = spawn(process.execPath, [file, ...PLAN[name]], { stdio: 'inherit' });
    const stop = () => child.kill('SIGTERM');
    process.once('SIGINT', stop);
    const timer = setTimeout(() => {
      console.error(`\n${name}: still running after ${LIMIT_MS[name]} min; stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
    }, LIMIT_MS[name] * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      resolve(code === 0 ? 'ok' : `failed (${signal ?? `exit ${code}`})`);
    });
  });
}

const outcomes = [];
for (const name of names) {
  const load = loadavg().map((v) => v.toFixed(2)).join(' ');
  console.log(`\n=== ${name} ${PLAN[name].join(' ')} (load average ${load}) ===`);
  const t0 = Date.now();
  outcomes.push([name, await run(name), ((Date.now() - t0) / 1000).toFixed(0)]);
}
console.log('\nbenchmark   outcome   seconds');
for (const [name, outcome, s] of outcomes) console.log(`${name.padEnd(11)} ${outcome.padEnd(9)} ${s}`);
console.log('Results: docs/BENCHMARKS.md');
process.exitCode = outcomes.every(([, o]) => o === 'ok') ? 0 : 1;
