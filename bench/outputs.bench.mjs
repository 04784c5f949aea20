// Outputs (docs/BENCHMARKS.md, "Goals"): a large output (1 GiB by default) written by a child, uploaded by the agent to
// `serve`, and downloaded again with `ufdl-agent download`, against `cp` of the same file on the same
// disk. Goals: peak RSS growth under 64 MiB for each process (agent, server, downloader), and each
// hop at least half the throughput of the local copy.
//
// How each figure is taken:
// - cp: `cp source copy` of the (page-cached) source file, and the same followed by `sync`; and, for
//   scale, a read + SHA-256 + write of the file in node (what storing content-addressed costs once).
// - agent → server: from the child's last instruction (`date +%s%N` after it wrote the file into
//   $UFDL_OUTPUT_DIR) to the job's end_time on the server: the agent's scan (it hashes the file), the
//   streamed upload, the server's hashing and storing, and the finish call.
// - server → download: `ufdl-agent download` of the big output minus that of the small `log` output
//   (the CLI's own start-up and login), under /usr/bin/time (GNU time) for the downloader's peak RSS
//   where it is installed, else by sampling its VmHWM.
// - RSS growth: VmHWM after the transfer minus VmRSS before it, for the agent and the server (their
//   peaks are reset first through /proc/<pid>/clear_refs); for the downloader its max RSS minus that
//   of the small download.
// All files live in one temp dir on the same disk (the system temp dir unless --dir) and are
// deleted at the end.
//
//   node bench/outputs.bench.mjs [--mib 1024] [--dir /tmp] [--profile DIR (CPU profiles of agent and server)]
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { ADMIN, CLI, procStats, resetPeakRss, rssSampler } from './lib/processes.mjs';
import {
  cleanup,
  createJob,
  importShellTemplate,
  loadAverage,
  positive,
  profileArgs,
  session,
  sleep,
  startAgent,
  startTrackedServe,
  stopProcess,
  tempDir,
  track,
  waitJobEnd,
} from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: { mib: { type: 'string', default: '1024' }, dir: { type: 'string', default: tmpdir() }, profile: { type: 'string' } },
});
const MIB = positive('mib', args.mib);
const SIZE = Math.round(MIB * 2 ** 20);
const RSS_GOAL = 64 * 2 ** 20;
const MiB = (bytes) => bytes / 2 ** 20;
const GNU_TIME = '/usr/bin/time';

/** Write `size` bytes of random data (incompressible, unique) and return its sha256. */
async function makeSource(path, size) {
  const file = await open(path, 'w');
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(4 * 2 ** 20);
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(chunk.length, size - written);
      randomFillSync(chunk, 0, n);
      hash.update(chunk.subarray(0, n));
      await file.write(chunk, 0, n);
      written += n;
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

function sha256Of(path) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => hash.update(c))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/**
 * A second baseline: the least any content-addressed store does once — read, SHA-256 and write the
 * file in one node process, 1 MiB at a time. The product does this twice (the agent hashes before
 * it uploads, the server while it stores), plus two trips through a loopback socket.
 */
async function hashCopy(from, to) {
  const t0 = performance.now();
  const hash = createHash('sha256');
  const out = await open(to, 'w');
  try {
    for await (const chunk of createReadStream(from, { highWaterMark: 2 ** 20 })) {
      hash.update(chunk);
      await out.write(chunk);
    }
  } finally {
    await out.close();
  }
  hash.digest('hex');
  return (performance.now() - t0) / 1000;
}

/** Run a command to completion; returns wall seconds. */
function run(cmd, argv, { onSpawn, ...options } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
    onSpawn?.(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}: ${err.trim()}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, out, err });
    });
  });
}

/**
 * `ufdl-agent download`: wall seconds and max RSS in bytes — from GNU time where it is installed,
 * else from VmHWM sampled every 20 ms (which may miss a peak in the last 20 ms).
 */
async function download(serverUrl, pk, name, dest) {
  const env = {
    ...process.env,
    UFDL_AGENT_SERVER_URL: serverUrl,
    UFDL_AGENT_SERVER_USERNAME: ADMIN.username,
    UFDL_AGENT_SERVER_PASSWORD: ADMIN.password,
  };
  const argv = [CLI, 'download', String(pk), name, '-o', dest, '--force'];
  if (existsSync(GNU_TIME)) {
    const { seconds, err } = await run(GNU_TIME, ['-f', 'UFDL-MAXRSS %M', process.execPath, ...argv], { env });
    const kib = Number(/UFDL-MAXRSS (\d+)/.exec(err)?.[1]);
    if (!Number.isFinite(kib)) throw new Error(`no max RSS from ${GNU_TIME}: ${err}`);
    return { seconds, maxRss: kib * 1024 };
  }
  let maxRss = 0;
  let pid;
  const watching = setInterval(() => {
    if (pid !== undefined) procStats(pid).then((s) => (maxRss = Math.max(maxRss, s.peakRss)), () => {});
  }, 20);
  try {
    const { seconds } = await run(process.execPath, argv, { env, onSpawn: (child) => (pid = child.pid) });
    return { seconds, maxRss };
  } finally {
    clearInterval(watching);
  }
}


const load0 = await loadAverage();
let result;
try {
  const root = await tempDir('ufdl-bench-outputs-', args.dir);
  const source = join(root, 'source.bin');
  const stamp = join(root, 'stamp');
  console.log(`outputs: writing a ${MIB} MiB source file in ${root} …`);
  const sourceSha = await makeSource(source, SIZE);

  // --- baseline: cp on the same disk ------------------------------------------------------------
  await run('sync', []);
  const cp = await run('cp', [source, join(root, 'copy.bin')]);
  await rm(join(root, 'copy.bin'));
  await run('sync', []);
  const cpSync = await run('sh', ['-c', `cp '${source}' '${join(root, 'copy.bin')}' && sync`]);
  await rm(join(root, 'copy.bin'));
  await run('sync', []);
  const hashCopySeconds = await hashCopy(source, join(root, 'copy.bin'));
  await rm(join(root, 'copy.bin'));
  await run('sync', []);

  // --- through the product ----------------------------------------------------------------------
  const server = await startTrackedServe({ parentDir: root, nodeArgs: profileArgs(args.profile, 'server') });
  const getToken = session(server.url);
  const script = `cp '${source}' "$UFDL_OUTPUT_DIR/big.bin"\ndate +%s%N > '${stamp}'\n`;
  const templatePk = await importShellTemplate(server.url, await getToken(), 'bench-outputs', script, { 'big.bin': 'BLOB' });
  const agent = startAgent({ serverUrl: server.url, dir: join(root, 'agent'), env: { UFDL_AGENT_WAIT: '30' }, nodeArgs: profileArgs(args.profile, 'agent') });
  try {
    // Let the agent start and settle before taking its baseline.
    const warm = await createJob(server.url, await getToken(), await importShellTemplate(server.url, await getToken(), 'bench-warm', 'exit 0\n'));
    await waitJobEnd(server.url, getToken, warm.pk, { timeoutMs: 60_000 });
    await sleep(1000);

    const pids = { agent: agent.pid, server: server.child.pid };
    const before = {};
    let hwmReset = true;
    for (const [k, pid] of Object.entries(pids)) {
      hwmReset = (await resetPeakRss(pid)) && hwmReset;
      before[k] = await procStats(pid);
    }
    const stopSampling = rssSampler(Object.values(pids));
    console.log('outputs: the job writes and the agent uploads …');
    const created = await createJob(server.url, await getToken(), templatePk);
    const job = await waitJobEnd(server.url, getToken, created.pk, { timeoutMs: 30 * 60_000, everyMs: 100 });
    const sampled = await stopSampling();
    const afterUpload = {};
    for (const [k, pid] of Object.entries(pids)) afterUpload[k] = await procStats(pid);
    const childDoneMs = Number(BigInt((await readFile(stamp, 'utf8')).trim()) / 1000n) / 1000;
    const uploadSeconds = (Date.parse(job.end_time) - childDoneMs) / 1000;
    const outputs = job.outputs.map((o) => o.name).sort();
    if (!outputs.includes('big.bin')) throw new Error(`the job has no big.bin output: ${outputs.join(', ')}`);

    console.log('outputs: downloading …');
    const small = await download(server.url, created.pk, 'log', join(root, 'log.txt'));
    await resetPeakRss(pids.server);
    const serverBeforeDownload = await procStats(pids.server);
    const big = await download(server.url, created.pk, 'big.bin', join(root, 'down.bin'));
    const serverAfterDownload = await procStats(pids.server);
    const downSize = (await stat(join(root, 'down.bin'))).size;
    const downSha = await sha256Of(join(root, 'down.bin'));
    if (downSize !== SIZE || downSha !== sourceSha) throw new Error(`the downloaded file differs: ${downSize} bytes, sha256 ${downSha}`);
    const downloadSeconds = Math.max(0.001, big.seconds - small.seconds);

    const growth = (k) => (hwmReset ? afterUpload[k].peakRss : Math.max(afterUpload[k].peakRss, sampled.get(pids[k]))) - before[k].rss;
    result = {
      cp: SIZE / cp.seconds,
      cpSync: SIZE / cpSync.seconds,
      hashCopy: SIZE / hashCopySeconds,
      upload: SIZE / uploadSeconds,
      download: SIZE / downloadSeconds,
      uploadSeconds,
      downloadSeconds,
      cpSeconds: cp.seconds,
      agentGrowth: growth('agent'),
      serverGrowthUpload: growth('server'),
      serverGrowthDownload: serverAfterDownload.peakRss - serverBeforeDownload.rss,
      downloaderGrowth: big.maxRss - small.maxRss,
      downloaderPeak: big.maxRss,
      agentPeak: afterUpload.agent.peakRss,
      serverPeak: Math.max(afterUpload.server.peakRss, serverAfterDownload.peakRss),
      hwmReset,
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
const rate = (bps) => `${MiB(bps).toFixed(0)} MiB/s`;
const ratio = (bps) => bps / r.cp;
const serverGrowth = Math.max(r.serverGrowthUpload, r.serverGrowthDownload);
const rssMet = Math.max(r.agentGrowth, serverGrowth, r.downloaderGrowth) < RSS_GOAL;
const speedMet = ratio(r.upload) >= 0.5 && ratio(r.download) >= 0.5;
console.log(`\noutputs benchmark — ${MIB} MiB — ${machineLabel()} — load ${load}`);
console.log('path                 throughput     vs cp   seconds');
console.log(`cp (page cache)      ${rate(r.cp).padStart(11)}    1.00   ${r.cpSeconds.toFixed(2)}`);
console.log(`cp + sync            ${rate(r.cpSync).padStart(11)}    ${(r.cpSync / r.cp).toFixed(2)}`);
console.log(`node read+sha256+write ${rate(r.hashCopy).padStart(9)}    ${(r.hashCopy / r.cp).toFixed(2)}   (the floor of one content-addressed copy)`);
console.log(`agent → server       ${rate(r.upload).padStart(11)}    ${ratio(r.upload).toFixed(2)}   ${r.uploadSeconds.toFixed(2)}`);
console.log(`server → download    ${rate(r.download).padStart(11)}    ${ratio(r.download).toFixed(2)}   ${r.downloadSeconds.toFixed(2)}`);
console.log('process      peak RSS   growth (goal < 64 MiB)');
console.log(`agent        ${MiB(r.agentPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.agentGrowth).toFixed(1)} MiB`);
console.log(`server       ${MiB(r.serverPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.serverGrowthUpload).toFixed(1)} MiB upload, ${MiB(r.serverGrowthDownload).toFixed(1)} MiB download`);
console.log(`downloader   ${MiB(r.downloaderPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.downloaderGrowth).toFixed(1)} MiB (vs downloading a tiny output)`);
if (!r.hwmReset) console.log('(VmHWM could not be reset: growth uses sampled RSS and may include start-up peaks)');
console.log(`goals: RSS growth ${rssMet ? 'MET' : 'NOT MET'}; throughput ≥ 0.5 × cp ${speedMet ? 'MET' : 'NOT MET'}`);

await recordResult(
  'Outputs',
  ['date', 'machine', 'load avg before → after', 'MiB', 'cp', 'cp+sync', 'node sha256 copy', 'agent → server (×cp)', 'server → download (×cp)', 'RSS growth agent / server / downloader', 'met (RSS, speed)'],
  [
    today(),
    machineLabel(),
    load,
    MIB,
    rate(r.cp),
    rate(r.cpSync),
    rate(r.hashCopy),
    `${rate(r.upload)} (${ratio(r.upload).toFixed(2)})`,
    `${rate(r.download)} (${ratio(r.download).toFixed(2)})`,
    `${MiB(r.agentGrowth).toFixed(1)} / ${MiB(serverGrowth).toFixed(1)} / ${MiB(r.downloaderGrowth).toFixed(1)} MiB`,
    `${rssMet ? 'yes' : 'no'}, ${speedMet ? 'yes' : 'no'}`,
  ],
);
