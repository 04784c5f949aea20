// Live job logs under a flood: a job prints 50 MiB/s for a minute (by default) while the agent
// streams its console output to `serve` and one follower reads it live over the web-socket. Goals:
// neither the agent's nor the server's memory grows by more than 64 MiB, and the child is not slowed
// down (it writes to a file; the agent reads behind it).
//
// How each figure is taken:
// - the child paces itself: every 20 ms it writes what the rate allows (1 MiB at 50 MiB/s) with
//   blocking writes to stdout, and records the bytes and seconds it took; "achieved" is that rate.
//   A child that the agent slowed down would fall behind its schedule.
// - RSS growth: VmHWM after the job minus VmRSS before it (peaks reset through clear_refs), for the
//   agent and the server, cross-checked by sampling VmRSS every 100 ms.
// - the follower counts the bytes it received; the server keeps at most logs.max_bytes of them.
// - afterwards the live log (read back in pieces) must equal the job's `log` output byte for byte.
//
//   node bench/live-log.bench.mjs [--mib-per-s 50] [--seconds 60] [--dir /tmp]
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { procStats, resetPeakRss, rssSampler } from './lib/processes.mjs';
import { cleanup, createJob, importShellTemplate, loadAverage, positive, session, sleep, startAgent, startTrackedServe, stopProcess, tempDir, waitJobEnd } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: { 'mib-per-s': { type: 'string', default: '50' }, seconds: { type: 'string', default: '60' }, dir: { type: 'string', default: tmpdir() } },
});
const RATE = positive('mib-per-s', args['mib-per-s']);
const SECONDS = positive('seconds', args.seconds);
const RSS_GOAL = 64 * 2 ** 20;
const MiB = (bytes) => bytes / 2 ** 20;

/** The flooding child: paced writes of text lines to stdout; its own figures go to $1. */
const WRITER = `
const fs = require('fs');
const [rate, seconds, stamp] = process.argv.slice(1).map((v, i) => (i < 2 ? Number(v) : v));
const tick = 0.02;
const line = Buffer.from('epoch 1 step 123456: loss=0.123456 acc=0.987654 lr=0.0001 ' + 'x'.repeat(40) + '\\n');
const piece = Buffer.alloc(Math.round(rate * 1048576 * tick));
for (let i = 0; i < piece.length; i += line.length) line.copy(piece, i);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const start = Date.now();
let bytes = 0;
for (let n = 1; Date.now() - start < seconds * 1000; n++) {
  for (let off = 0; off < piece.length; ) off += fs.writeSync(1, piece, off);
  bytes += piece.length;
  const wait = start + n * tick * 1000 - Date.now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
}
fs.writeFileSync(stamp, JSON.stringify({ bytes, seconds: (Date.now() - start) / 1000 }));
`;

/** Follow the job's live log over the web-socket, counting bytes. */
function follow(url, token, pk) {
  const state = { bytes: 0, frames: 0, done: undefined };
  state.done = new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/jobs/${pk}/log?offset=0&token=${token}`);
    ws.on('message', (data, binary) => {
      state.frames++;
      if (binary) state.bytes += data.length;
      else if (JSON.parse(data.toString()).type === 'end') resolve();
    });
    ws.on('error', reject);
    ws.on('close', () => resolve());
  });
  return state;
}

/** The whole live log read back piece by piece, with the dropped-range marker where the cap cut it. */
async function readLiveLog(url, token, pk) {
  const { droppedMarker } = await import('../dist/protocol/live-log.js');
  const parts = [];
  let offset = 0;
  for (;;) {
    const res = await fetch(`${url}/v1/jobs/${pk}/log?offset=${offset}`, { headers: { authorization: `Bearer ${token}` } });
    const body = Buffer.from(await res.arrayBuffer());
    const at = Number(res.headers.get('x-ufdl-log-offset'));
    if (at > offset) parts.push(Buffer.from(droppedMarker(offset, at, Number(res.headers.get('x-ufdl-log-max-bytes')))));
    parts.push(body);
    offset = at + body.length;
    if (body.length === 0 || offset >= Number(res.headers.get('x-ufdl-log-length'))) return Buffer.concat(parts);
  }
}


const load0 = await loadAverage();
let result;
try {
  const root = await tempDir('ufdl-bench-live-log-', args.dir);
  const stamp = join(root, 'writer.json');
  const server = await startTrackedServe({ parentDir: root });
  const getToken = session(server.url);
  const script = `'${process.execPath}' -e '${WRITER.replace(/'/g, `'"'"'`)}' ${RATE} ${SECONDS} '${stamp}'\n`;
  const templatePk = await importShellTemplate(server.url, await getToken(), 'bench-live-log', script);
  const agent = startAgent({ serverUrl: server.url, dir: join(root, 'agent'), env: { UFDL_AGENT_WAIT: '30' } });
  try {
    const warm = await createJob(server.url, await getToken(), await importShellTemplate(server.url, await getToken(), 'bench-warm', 'echo warm\n'));
    await waitJobEnd(server.url, getToken, warm.pk, { timeoutMs: 60_000 });
    await sleep(1000);
    const pids = { agent: agent.pid, server: server.child.pid };
    const before = {};
    for (const [k, pid] of Object.entries(pids)) {
      await resetPeakRss(pid);
      before[k] = await procStats(pid);
    }
    const stopSampling = rssSampler(Object.values(pids));
    console.log(`live-log: a job prints ${RATE} MiB/s for ${SECONDS} s …`);
    const created = await createJob(server.url, await getToken(), templatePk);
    const follower = follow(server.url, await getToken(), created.pk);
    const job = await waitJobEnd(server.url, getToken, created.pk, { timeoutMs: (SECONDS + 600) * 1000, everyMs: 200 });
    await Promise.race([follower.done, sleep(30_000)]);
    const sampled = await stopSampling();
    const after = {};
    for (const [k, pid] of Object.entries(pids)) after[k] = await procStats(pid);
    const writer = JSON.parse(await readFile(stamp, 'utf8'));
    const token = await getToken();
    const logRes = await fetch(`${server.url}/v1/jobs/${created.pk}/outputs/log/BLOB`, { headers: { authorization: `Bearer ${token}` } });
    const logOutput = Buffer.from(await logRes.arrayBuffer());
    const live = await readLiveLog(server.url, token, created.pk);
    const growth = (k) => Math.max(after[k].peakRss, sampled.get(pids[k])) - before[k].rss;
    result = {
      achieved: writer.bytes / 2 ** 20 / writer.seconds,
      written: writer.bytes,
      seconds: writer.seconds,
      agentGrowth: growth('agent'),
      serverGrowth: growth('server'),
      followed: follower.bytes,
      logBytes: logOutput.length,
      identical: live.equals(logOutput),
      endToEnd: (Date.parse(job.end_time) - Date.parse(job.start_time)) / 1000,
    };
  } finally {
    await stopProcess(agent);
    await server.stop();
  }
} finally {
  await cleanup();
}
const load1 = await loadAverage();
const load = `${load0} → ${load1}`;
const r = result;
const rssMet = Math.max(r.agentGrowth, r.serverGrowth) < RSS_GOAL;
const paceMet = r.achieved >= RATE * 0.95;
console.log(`\nlive-log benchmark — ${RATE} MiB/s for ${SECONDS} s — ${machineLabel()} — load ${load}`);
console.log(`child wrote          ${MiB(r.written).toFixed(0)} MiB in ${r.seconds.toFixed(1)} s = ${r.achieved.toFixed(1)} MiB/s (target ${RATE})`);
console.log(`job start → end      ${r.endToEnd.toFixed(1)} s`);
console.log(`RSS growth           agent ${MiB(r.agentGrowth).toFixed(1)} MiB, server ${MiB(r.serverGrowth).toFixed(1)} MiB (goal < 64 MiB)`);
console.log(`follower received    ${MiB(r.followed).toFixed(1)} MiB; log output ${MiB(r.logBytes).toFixed(1)} MiB; live log = log output: ${r.identical}`);
console.log(`goals: memory ${rssMet ? 'MET' : 'NOT MET'}; child not slowed ${paceMet ? 'MET' : 'NOT MET'}`);
if (!r.identical) process.exitCode = 1;

await recordResult(
  'Live logs',
  ['date', 'machine', 'load avg before → after', 'target', 'child achieved', 'RSS growth agent / server', 'follower got', 'live log = log output', 'met (memory, pace)'],
  [
    today(),
    machineLabel(),
    load,
    `${RATE} MiB/s × ${SECONDS} s`,
    `${r.achieved.toFixed(1)} MiB/s`,
    `${MiB(r.agentGrowth).toFixed(1)} / ${MiB(r.serverGrowth).toFixed(1)} MiB`,
    `${MiB(r.followed).toFixed(1)} MiB`,
    r.identical ? 'yes' : 'no',
    `${rssMet ? 'yes' : 'no'}, ${paceMet ? 'yes' : 'no'}`,
  ],
);
