// Server cost per request in instructions, counted by valgrind (callgrind), for the lifecycle mix of
// bench/lifecycle.bench.mjs (create-job, acquire, start, 10 progress, one 1 KiB output, finish),
// against bare node:http answering the same requests. Instructions do not depend on how busy the
// machine is, so this tells a change from noise where the throughput ratio cannot (a shared 2-core
// machine varies 2–3× between runs). Every thread of the server process is counted (the disk syncs
// of group commit, the checkpoint worker).
//
//   node bench/request-cost.bench.mjs [--lifecycles 200] [--warmup 400] [--nodes 10] [--ours-only]
//                                     [--syscalls]
//
// --ours-only: measure the ufdl server alone (to compare two builds of it); nothing is recorded.
// --syscalls: count system calls per request instead (strace, attached for the measured lifecycles;
// the servers run without valgrind). Instructions are user space only, and a quarter of the server's
// CPU time is the kernel's: a file lock, a thread-pool hand-off or a socket write each cost a call.
//
// --warmup: lifecycles run before the count starts. Under valgrind V8's optimizing compiler gets its
// turn late (valgrind runs one thread at a time), and until it has compiled the hot functions the
// count is mostly the baseline tier's inline caches: with 30 warm-up lifecycles the event loop ran
// 482 k instructions a request, with 400 (6,000 requests) 300 k, the optimized code the server runs
// under load (2026-12-06). Counts taken with different warm-ups do not compare.
//
// Needs valgrind (Debian: apt-get install valgrind). Slow: the servers run ~50× slower under it.
import { execFileSync, fork, spawn } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { ADMIN, CLI, call, freePort, login, waitFor } from './lib/processes.mjs';
import { cleanup, importShellTemplate, loadAverage, positive, stopProcess, tempDir, track } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    lifecycles: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '400' },
    nodes: { type: 'string', default: '10' },
    'ours-only': { type: 'boolean', default: false },
    syscalls: { type: 'boolean', default: false },
  },
});
const NODES = positive('nodes', args.nodes);
const PER_NODE = Math.ceil(positive('lifecycles', args.lifecycles) / NODES);
const WARMUP_PER_NODE = Math.ceil(positive('warmup', args.warmup) / NODES);
const SYSCALLS = args.syscalls;
const TOOL = SYSCALLS ? 'strace' : 'valgrind';
try {
  execFileSync(TOOL, ['--version'], { stdio: 'ignore' });
} catch {
  console.error(`${TOOL} is not installed (Debian: apt-get install ${TOOL})`);
  process.exit(2);
}

// Threads apart: the main thread (the event loop: what a request costs where the server is
// single-threaded) and the others (V8's compiler and concurrent GC, the disk syncs, the checkpoint
// worker), whose work is less tied to the requests of the moment.
function valgrindArgs(dir) {
  return ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'callgrind.out.%p')}`, '--dump-instr=no', '--trace-children=no', '--separate-threads=yes', process.execPath];
}

/** Run the lifecycle generator (one process) for `perNode` lifecycles per node; returns requests made. */
function generate(config, perNode) {
  return new Promise((resolve, reject) => {
    const child = track(fork(new URL('./lib/lifecycle-worker.mjs', import.meta.url), [JSON.stringify({ ...config, durationMs: 3_600_000, lifecyclesPerNode: perNode })]));
    child.once('message', (r) => {
      if (r.errors > 0) reject(new Error(`${r.errors} requests failed: ${r.errorSamples.join('; ')}`));
      else resolve(Object.values(r.latencies).reduce((n, v) => n + v.length, 0));
    });
    child.once('error', reject);
  });
}

/**
 * With --syscalls: strace attached to every thread of `pid` for the measured lifecycles; `main` and
 * `all` are then system calls (all threads), and `calls` the busiest ones.
 */
async function measureSyscalls(pid, dir, config) {
  await generate(config, WARMUP_PER_NODE);
  const out = join(dir, 'strace.txt');
  const strace = track(spawn('strace', ['-f', '-c', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let attached = '';
  await new Promise((resolve, reject) => {
    strace.stderr.on('data', (chunk) => {
      attached += chunk;
      if (/attached/i.test(attached)) resolve();
    });
    strace.once('exit', () => reject(new Error(`strace ended: ${attached}`)));
  });
  const requests = await generate(config, PER_NODE);
  const ended = new Promise((r) => strace.once('exit', r));
  strace.kill('SIGINT');
  await ended;
  const rows = readFileSync(out, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 5 && /^\d+$/.test(c[3]));
  const total = rows.find((c) => c.at(-1) === 'total');
  const calls = rows.filter((c) => c.at(-1) !== 'total').map((c) => [c.at(-1), Number(c[3])]).sort((a, b) => b[1] - a[1]);
  return { main: Number(total?.[3] ?? 0), all: Number(total?.[3] ?? 0), requests, calls };
}

/** Zero the counters, run the measured lifecycles, dump: instructions and requests. */
async function measure(pid, dir, config) {
  if (SYSCALLS) return measureSyscalls(pid, dir, config);
  await generate(config, WARMUP_PER_NODE);
  execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' });
  const requests = await generate(config, PER_NODE);
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
  // One file per thread of the last dump: callgrind.out.<pid>.<dump>-<thread>, thread 01 the main one.
  const files = readdirSync(dir).filter((f) => f.startsWith(`callgrind.out.${pid}.`));
  const lastDump = Math.max(...files.map((f) => Number(/\.(\d+)-\d+$/.exec(f)?.[1] ?? 0)));
  let main = 0;
  let all = 0;
  for (const file of files.filter((f) => Number(/\.(\d+)-\d+$/.exec(f)?.[1]) === lastDump)) {
    const text = readFileSync(join(dir, file), 'utf8');
    const totals = /^(?:totals|summary):\s*(\d+)/m.exec(text);
    if (!totals) throw new Error(`no totals in ${file}`);
    all += Number(totals[1]);
    if (file.endsWith('-01')) {
      main = Number(totals[1]);
      // UFDL_BENCH_KEEP_DUMP=DIR: keep the main thread's dump, for `callgrind_annotate`.
      if (process.env.UFDL_BENCH_KEEP_DUMP) copyFileSync(join(dir, file), join(process.env.UFDL_BENCH_KEEP_DUMP, `${config.bare ? 'bare' : 'ours'}.callgrind`));
    }
  }
  return { main, all, requests };
}

async function ours() {
  const dir = await tempDir('ufdl-bench-cost-');
  const port = await freePort();
  const child = track(
    spawn(SYSCALLS ? process.execPath : 'valgrind', [...(SYSCALLS ? [] : valgrindArgs(dir)), CLI, 'serve', '--data', join(dir, 'data'), '--port', String(port)], {
      env: { ...process.env, UFDL_ADMIN_USER: ADMIN.username, UFDL_ADMIN_PASSWORD: ADMIN.password, UFDL_AGENT_LOG_LEVEL: 'warn', UFDL_AGENT_SERVE_ACCESS_TOKEN_LIFETIME: '3600' },
      stdio: ['ignore', 'ignore', 'ignore'],
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/livez`, 600_000);
  const token = await login(url);
  const templatePk = await importShellTemplate(url, token, 'bench-cost', 'true');
  const nodePks = [];
  for (let i = 0; i < NODES; i++) nodePks.push((await call(url, 'POST', '/v1/nodes/create', { token, json: { ip: '127.0.0.1', index: i, cpu_mem: 1 << 30 } })).pk);
  const result = await measure(child.pid, dir, { url, token, templatePk, nodePks, bare: false });
  await stopProcess(child, 60_000);
  return result;
}

async function bare() {
  const dir = await tempDir('ufdl-bench-cost-bare-');
  const valgrind = SYSCALLS ? {} : { execPath: 'valgrind', execArgv: valgrindArgs(dir) };
  const child = track(fork(new URL('./lib/bare-server.mjs', import.meta.url), { ...valgrind, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }));
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const nodePks = Array.from({ length: NODES }, (_, i) => i + 1);
  const result = await measure(child.pid, dir, { url: `http://127.0.0.1:${port}`, token: 'x', templatePk: 1, nodePks, bare: true });
  child.send('stop');
  await stopProcess(child, 60_000);
  return result;
}

try {
  const load0 = await loadAverage();
  const o = await ours();
  if (SYSCALLS) {
    const b = args['ours-only'] ? undefined : await bare();
    const per = (r) => `${(r.all / r.requests).toFixed(1)} system calls per request (${r.requests} requests): ${r.calls.slice(0, 12).map(([name, n]) => `${name} ${(n / r.requests).toFixed(2)}`).join(', ')}`;
    console.log(`\nufdl server: ${per(o)}`);
    if (b) console.log(`bare node:http: ${per(b)}`);
    process.exit(0);
  }
  if (args['ours-only']) {
    console.log(`\nufdl server: ${(o.main / o.requests / 1000).toFixed(0)} k instructions per request on the event loop, ${(o.all / o.requests / 1000).toFixed(0)} k in all threads (${o.requests} requests)`);
    process.exit(0);
  }
  const b = await bare();
  const load1 = await loadAverage();
  const k = (n, r) => (n / r / 1000).toFixed(0);
  console.log(`\nrequest cost — lifecycle mix, ${o.requests} requests measured after ${WARMUP_PER_NODE * NODES} warm-up lifecycles — ${machineLabel()} — load ${load0} → ${load1}`);
  console.log('                 k instructions per request: event loop   all threads');
  console.log(`ufdl server:    ${k(o.main, o.requests).padStart(38)} ${k(o.all, o.requests).padStart(13)}`);
  console.log(`bare node:http: ${k(b.main, b.requests).padStart(38)} ${k(b.all, b.requests).padStart(13)}`);
  const ratio = (o.main / o.requests) / (b.main / b.requests);
  console.log(`ours / bare (event loop): ${ratio.toFixed(2)}`);
  await recordResult(
    'Server cost per request (instructions)',
    ['date', 'machine', 'load avg before → after', 'requests', 'ours k instr / request: event loop, all threads', 'bare k instr / request: event loop, all threads', 'ours / bare (event loop)'],
    [today(), machineLabel(), `${load0} → ${load1}`, o.requests, `${k(o.main, o.requests)}, ${k(o.all, o.requests)}`, `${k(b.main, b.requests)}, ${k(b.all, b.requests)}`, ratio.toFixed(2)],
  );
} finally {
  await cleanup();
}
