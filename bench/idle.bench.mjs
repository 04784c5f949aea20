// Agent at rest: the agent's RSS and CPU over a window with no jobs, at its default poll
// schedule (10 s, then 30 s), against `serve` with wake-up (the agent holds 30 s polls) and against
// `serve --no-extensions` (the agent polls on its schedule). Goals: under 80 MiB RSS and under 1 % of
// one core. The server's own CPU and the requests it answered (from its /metrics) are shown too.
//
// The agent runs as shipped: with the node flags of the systemd unit's ExecStart= (the image's
// entrypoint.sh gives `run` the same; a test keeps them equal). `--node-args` replaces them ('' for
// none, to compare).
//
//   node bench/idle.bench.mjs [--seconds 60] [--settle 5] [--modes wake,poll] [--node-args='--flag …'] [--profile DIR]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { procStats } from './lib/processes.mjs';
import { cleanup, loadAverage, positive, profileArgs, sleep, startAgent, startTrackedServe, stopProcess, tempDir } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    settle: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'wake,poll' },
    profile: { type: 'string' },
    'node-args': { type: 'string' },
  },
});
/** The node flags the systemd unit starts the agent with: `ExecStart=/usr/bin/env node <flags> <bin> run`. */
function shippedNodeArgs() {
  const unit = readFileSync(new URL('../systemd/ufdl-agent.service', import.meta.url), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? [];
  const node = exec.indexOf('node');
  const bin = exec.findIndex((word) => word.endsWith('/ufdl-agent'));
  return node >= 0 && bin > node ? exec.slice(node + 1, bin) : [];
}
// The agent's node flags, recorded with the row.
const SHIPPED = args['node-args'] === undefined;
const NODE_ARGS = SHIPPED ? shippedNodeArgs() : args['node-args'].split(' ').filter(Boolean);
const SECONDS = positive('seconds', args.seconds);
const SETTLE_S = Number(args.settle);
const MODES = args.modes.split(',').map((m) => m.trim());
for (const m of MODES) if (m !== 'wake' && m !== 'poll') throw new Error(`--modes: unknown mode '${m}' (wake, poll)`);
const RSS_GOAL = 80 * 2 ** 20;
const CPU_GOAL = 1; // % of one core
const MiB = (b) => b / 2 ** 20;

/** Requests the server answered so far, from its Prometheus counter (the scrape itself excluded). */
async function requestsAnswered(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('ufdl_server_http_requests_total{') && !line.includes('route="/metrics"')) n += Number(line.split(' ').at(-1));
  }
  return n;
}

async function runMode(mode) {
  const dir = await tempDir(`ufdl-bench-idle-${mode}-`);
  const server = await startTrackedServe({ extraArgs: mode === 'poll' ? ['--no-extensions'] : [] });
  // The default schedule: no UFDL_AGENT_POLL_INTERVAL or UFDL_AGENT_WAIT override.
  const agent = startAgent({ serverUrl: server.url, dir, nodeArgs: [...NODE_ARGS, ...profileArgs(args.profile, `agent-idle-${mode}`)] });
  try {
    await sleep(SETTLE_S * 1000);
    if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode} during start-up`);
    const load0 = await loadAverage();
    const a0 = await procStats(agent.pid);
    const s0 = await procStats(server.child.pid);
    const r0 = await requestsAnswered(server.url);
    const t0 = performance.now();
    const rss = [];
    while (performance.now() - t0 < SECONDS * 1000) {
      await sleep(1000);
      rss.push((await procStats(agent.pid)).rss);
    }
    const elapsedS = (performance.now() - t0) / 1000;
    const a1 = await procStats(agent.pid);
    const s1 = await procStats(server.child.pid);
    const r1 = await requestsAnswered(server.url);
    return {
      mode,
      seconds: elapsedS,
      rssMean: rss.reduce((s, v) => s + v, 0) / rss.length,
      rssMax: Math.max(...rss),
      hwm: a1.peakRss,
      cpuPct: ((a1.cpuSeconds - a0.cpuSeconds) / elapsedS) * 100,
      serverCpuPct: ((s1.cpuSeconds - s0.cpuSeconds) / elapsedS) * 100,
      requests: r1 - r0,
      load: `${load0} → ${await loadAverage()}`,
    };
  } finally {
    await stopProcess(agent);
    await server.stop();
  }
}

const results = [];
try {
  for (const mode of MODES) {
    console.log(`idle: ${mode} mode, ${SECONDS} s after ${SETTLE_S} s of start-up …`);
    results.push(await runMode(mode));
  }
} finally {
  await cleanup();
}

// The goal is on the mean RSS (the start-up peak shows in VmHWM and the max).
const met = (r) => r.rssMean < RSS_GOAL && r.cpuPct < CPU_GOAL;
console.log(`\nidle benchmark — agent with no jobs, ${SECONDS} s — agent node flags ${NODE_ARGS.join(' ') || 'none'}${SHIPPED ? ' (as shipped)' : ''} — ${machineLabel()}`);
console.log('mode   RSS mean  RSS max  VmHWM    agent CPU   server CPU  requests  load avg');
for (const r of results) {
  console.log(
    `${r.mode.padEnd(6)} ${MiB(r.rssMean).toFixed(1).padStart(6)} MiB ${MiB(r.rssMax).toFixed(1).padStart(5)} MiB ${MiB(r.hwm).toFixed(0).padStart(4)} MiB  ${r.cpuPct.toFixed(2).padStart(6)} %   ${r.serverCpuPct.toFixed(2).padStart(6)} %   ${String(r.requests).padStart(6)}    ${r.load}`,
  );
}
for (const r of results) console.log(`${r.mode}: goal RSS < 80 MiB (mean) and CPU < 1 % of a core — ${met(r) ? 'MET' : 'NOT MET'}`);
console.log('(CPU from /proc at 10 ms resolution; VmHWM includes the start-up peak)');

for (const r of results) {
  await recordResult(
    'Agent at rest (idle)',
    ['date', 'machine', 'load avg before → after', 'mode', 'seconds', 'RSS mean / max MiB', 'VmHWM MiB', 'agent CPU % of a core', 'server CPU %', 'requests', 'met'],
    [
      today(),
      machineLabel(),
      r.load,
      `${r.mode} (${SHIPPED ? 'as shipped: ' : ''}${NODE_ARGS.join(' ') || 'no flags'})`,
      r.seconds.toFixed(0),
      `${MiB(r.rssMean).toFixed(1)} / ${MiB(r.rssMax).toFixed(1)}`,
      MiB(r.hwm).toFixed(0),
      r.cpuPct.toFixed(2),
      r.serverCpuPct.toFixed(2),
      r.requests,
      met(r) ? 'yes' : 'no',
    ],
  );
}
