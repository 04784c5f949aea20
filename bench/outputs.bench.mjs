// Outputs: a large output (1 GiB by default) written by a child, uploaded by the agent to `serve`,
// and downloaded again with `ufdl-agent download`, against `curl` moving the same file through the
// same server (`curl --upload-file` to an output of another job, `curl -o` of the output), the legs
// interleaved round by round so that the machine's load hits both. Goals: each leg at least 0.7 ×
// curl's throughput, and peak RSS growth under 64 MiB for each process (agent, server, downloader).
// `cp` of the file on the same disk is shown for scale.
//
// How each figure is taken:
// - cp: `cp source copy` of the (page-cached) source file, and the same followed by `sync`; and, for
//   scale, a read + SHA-256 + write of the file in node (what storing content-addressed costs once).
// - agent → server: from the child's last instruction (`date +%s%N` after it wrote the file into
//   $UFDL_OUTPUT_DIR and ran `sync`) to the job's end_time on the server: the agent's scan, the
//   streamed upload (the agent hashes the file as it sends it), the server's hashing and storing, and
//   the finish call. The console also shows the CPU the agent and the server spent in that leg, and
//   the server's CPU under curl's upload.
// - curl → server: `curl -X POST --upload-file` of a fresh copy of the source (written and synced
//   just before, as the job's output is) to the upload route of a job started by another node; the
//   server hashes and stores it as it does the agent's. (`--data-binary @file`
//   reads the whole file into memory first, and refuses 1 GiB; `--upload-file` streams it.)
// - server → download: `ufdl-agent download` of the big output minus that of the small `log` output
//   (the CLI's own start-up and login), under /usr/bin/time (GNU time) for the downloader's peak RSS
//   where it is installed, else by sampling its VmHWM.
// - server → curl: `curl -o` of the same output.
// - RSS growth: VmHWM after the transfer minus VmRSS before it, for the agent and the server (their
//   peaks are reset first through /proc/<pid>/clear_refs); for the downloader its max RSS minus that
//   of the small download.
// All files live in one temp dir on the same disk (the system temp dir unless --dir) and are
// deleted at the end.
//
//   node bench/outputs.bench.mjs [--mib 1024] [--rounds 2] [--dir /tmp] [--profile DIR (CPU profiles of agent and server)]
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { ADMIN, CLI, call, procStats, resetPeakRss, rssSampler } from './lib/processes.mjs';
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
  options: {
    mib: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '2' },
    dir: { type: 'string', default: tmpdir() },
    profile: { type: 'string' },
  },
});
const MIB = positive('mib', args.mib);
const ROUNDS = positive('rounds', args.rounds);
const CURL_GOAL = 0.7;
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
 * file in one node process, 1 MiB at a time. The product does this twice (the agent hashes as it
 * uploads, the server as it stores), plus two trips through a loopback socket.
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

  // --- through the product, and curl through the same server, round by round ------------------
  const server = await startTrackedServe({ parentDir: root, nodeArgs: profileArgs(args.profile, 'server') });
  const getToken = session(server.url);
  // `sync` before the stamp: the child's own writing of the file (a gigabyte of dirty pages the kernel
  // then writes back while the upload runs) is the job's cost, not the agent's, and curl's leg, which
  // reads a file written long before, does not pay it either.
  const script = `cp '${source}' "$UFDL_OUTPUT_DIR/big.bin"\nsync\ndate +%s%N > '${stamp}'\n`;
  const templatePk = await importShellTemplate(server.url, await getToken(), 'bench-outputs', script, { 'big.bin': 'BLOB' });
  // curl uploads to a job that a node of its own has started, before the agent runs (so the agent
  // never takes that job).
  const curlNode = await call(server.url, 'POST', '/v1/nodes/create', { token: await getToken(), json: { ip: '10.99.0.1', index: 0, cpu_mem: 1 << 30 } });
  const curlJob = await createJob(server.url, await getToken(), templatePk);
  for (const [method, action] of [['GET', 'acquire'], ['POST', 'start']]) {
    await call(server.url, method, `/v1/jobs/${curlJob.pk}/${action}`, { token: await getToken(), nodeId: curlNode.pk, ...(method === 'POST' ? { json: {} } : {}) });
  }
  const curl = async (argv) => {
    const { seconds, out } = await run('curl', ['-sS', '--fail-with-body', '-o', argv.out, '-w', '%{http_code}', '-H', `authorization: Bearer ${await getToken()}`, ...argv.args]);
    if (out.trim() !== '200') throw new Error(`curl ${argv.args.at(-1)} answered ${out}`);
    return seconds;
  };
  const agent = startAgent({ serverUrl: server.url, dir: join(root, 'agent'), env: { UFDL_AGENT_WAIT: '30' }, nodeArgs: profileArgs(args.profile, 'agent') });
  const rounds = [];
  try {
    // Let the agent start and settle before taking its baseline.
    const warm = await createJob(server.url, await getToken(), await importShellTemplate(server.url, await getToken(), 'bench-warm', 'exit 0\n'));
    await waitJobEnd(server.url, getToken, warm.pk, { timeoutMs: 60_000 });
    await sleep(1000);

    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`outputs: round ${round} of ${ROUNDS}: curl uploads …`);
      // curl sends a copy written and synced just before, as the agent sends the file its job has just
      // written and synced: on this machine the server spends about twice the kernel time storing a
      // gigabyte right after another was written (the page cache's state, whoever sends it).
      const fresh = join(root, 'fresh.bin');
      await run('/bin/sh', ['-c', 'cp "$1" "$2" && sync', 'sh', source, fresh]);
      const serverBeforeCurl = await procStats(server.child.pid);
      const curlUpSeconds = await curl({
        out: '/dev/null',
        args: ['-H', `node-id: ${curlNode.pk}`, '-H', 'content-type: application/data', '-H', 'content-disposition: attachment; filename=big.bin', '-H', 'expect:', '-X', 'POST', '--upload-file', fresh, `${server.url}/v1/jobs/${curlJob.pk}/outputs/curl-${round}/BLOB`],
      });
      await rm(fresh);

      const serverCpuCurl = (await procStats(server.child.pid)).cpuSeconds - serverBeforeCurl.cpuSeconds;
      const pids = { agent: agent.pid, server: server.child.pid };
      const before = {};
      let hwmReset = true;
      for (const [k, pid] of Object.entries(pids)) {
        hwmReset = (await resetPeakRss(pid)) && hwmReset;
        before[k] = await procStats(pid);
      }
      const stopSampling = rssSampler(Object.values(pids));
      console.log(`outputs: round ${round}: the job writes and the agent uploads …`);
      const created = await createJob(server.url, await getToken(), templatePk);
      const job = await waitJobEnd(server.url, getToken, created.pk, { timeoutMs: 30 * 60_000, everyMs: 100 });
      const sampled = await stopSampling();
      const afterUpload = {};
      for (const [k, pid] of Object.entries(pids)) afterUpload[k] = await procStats(pid);
      const childDoneMs = Number(BigInt((await readFile(stamp, 'utf8')).trim()) / 1000n) / 1000;
      const uploadSeconds = (Date.parse(job.end_time) - childDoneMs) / 1000;
      const outputs = job.outputs.map((o) => o.name).sort();
      if (!outputs.includes('big.bin')) throw new Error(`the job has no big.bin output: ${outputs.join(', ')}`);

      console.log(`outputs: round ${round}: curl downloads, then ufdl-agent download …`);
      const curlDownSeconds = await curl({ out: join(root, 'curl.bin'), args: [`${server.url}/v1/jobs/${created.pk}/outputs/big.bin/BLOB`] });
      const curlSha = await sha256Of(join(root, 'curl.bin'));
      await rm(join(root, 'curl.bin'));
      if (curlSha !== sourceSha) throw new Error(`curl downloaded other bytes: sha256 ${curlSha}`);
      const small = await download(server.url, created.pk, 'log', join(root, 'log.txt'));
      await resetPeakRss(pids.server);
      const serverBeforeDownload = await procStats(pids.server);
      const big = await download(server.url, created.pk, 'big.bin', join(root, 'down.bin'));
      const serverAfterDownload = await procStats(pids.server);
      const downSize = (await stat(join(root, 'down.bin'))).size;
      const downSha = await sha256Of(join(root, 'down.bin'));
      await rm(join(root, 'down.bin'));
      if (downSize !== SIZE || downSha !== sourceSha) throw new Error(`the downloaded file differs: ${downSize} bytes, sha256 ${downSha}`);
      const downloadSeconds = Math.max(0.001, big.seconds - small.seconds);

      const growth = (k) => (hwmReset ? afterUpload[k].peakRss : Math.max(afterUpload[k].peakRss, sampled.get(pids[k]))) - before[k].rss;
      rounds.push({
        upload: SIZE / uploadSeconds,
        download: SIZE / downloadSeconds,
        curlUp: SIZE / curlUpSeconds,
        curlDown: SIZE / curlDownSeconds,
        agentCpu: afterUpload.agent.cpuSeconds - before.agent.cpuSeconds,
        serverCpu: afterUpload.server.cpuSeconds - before.server.cpuSeconds,
        serverCpuCurl,
        uploadSeconds,
        curlUpSeconds,
        agentGrowth: growth('agent'),
        serverGrowthUpload: growth('server'),
        serverGrowthDownload: serverAfterDownload.peakRss - serverBeforeDownload.rss,
        downloaderGrowth: big.maxRss - small.maxRss,
        downloaderPeak: big.maxRss,
        agentPeak: afterUpload.agent.peakRss,
        serverPeak: Math.max(afterUpload.server.peakRss, serverAfterDownload.peakRss),
        hwmReset,
      });
      console.log(
        `outputs: round ${round}: agent → server ${MiB(SIZE / uploadSeconds).toFixed(0)} MiB/s vs curl ${MiB(SIZE / curlUpSeconds).toFixed(0)} MiB/s ` +
          `(${uploadSeconds.toFixed(2)} s vs ${curlUpSeconds.toFixed(2)} s; CPU: agent ${rounds.at(-1).agentCpu.toFixed(2)} s, server ${rounds.at(-1).serverCpu.toFixed(2)} s, ` +
          `server under curl ${serverCpuCurl.toFixed(2)} s); ` +
          `download ${MiB(SIZE / downloadSeconds).toFixed(0)} MiB/s vs curl ${MiB(SIZE / curlDownSeconds).toFixed(0)} MiB/s`,
      );
    }
  } finally {
    await stopProcess(agent);
    await server.stop();
  }
  // Each ratio is taken within its round (same load for both sides), then averaged over the rounds.
  const mean = (f) => rounds.reduce((sum, r) => sum + f(r), 0) / rounds.length;
  const max = (f) => Math.max(...rounds.map(f));
  result = {
    cp: SIZE / cp.seconds,
    cpSync: SIZE / cpSync.seconds,
    hashCopy: SIZE / hashCopySeconds,
    cpSeconds: cp.seconds,
    upload: mean((r) => r.upload),
    download: mean((r) => r.download),
    curlUp: mean((r) => r.curlUp),
    curlDown: mean((r) => r.curlDown),
    uploadRatio: mean((r) => r.upload / r.curlUp),
    downloadRatio: mean((r) => r.download / r.curlDown),
    ratios: rounds.map((r) => `${(r.upload / r.curlUp).toFixed(2)}/${(r.download / r.curlDown).toFixed(2)}`).join(', '),
    agentGrowth: max((r) => r.agentGrowth),
    serverGrowthUpload: max((r) => r.serverGrowthUpload),
    serverGrowthDownload: max((r) => r.serverGrowthDownload),
    downloaderGrowth: max((r) => r.downloaderGrowth),
    downloaderPeak: max((r) => r.downloaderPeak),
    agentPeak: max((r) => r.agentPeak),
    serverPeak: max((r) => r.serverPeak),
    hwmReset: rounds.every((r) => r.hwmReset),
  };
} finally {
  await cleanup();
}
const load1 = await loadAverage();
const load = `${load0} → ${load1}`;

const r = result;
const rate = (bps) => `${MiB(bps).toFixed(0)} MiB/s`;
const serverGrowth = Math.max(r.serverGrowthUpload, r.serverGrowthDownload);
const rssMet = Math.max(r.agentGrowth, serverGrowth, r.downloaderGrowth) < RSS_GOAL;
const speedMet = r.uploadRatio >= CURL_GOAL && r.downloadRatio >= CURL_GOAL;
console.log(`\noutputs benchmark — ${MIB} MiB, ${ROUNDS} rounds — ${machineLabel()} — load ${load}`);
console.log('path                   throughput (mean)   vs curl (goal ≥ 0.7)');
console.log(`agent → server       ${rate(r.upload).padStart(13)}        ${r.uploadRatio.toFixed(2)}`);
console.log(`curl → server        ${rate(r.curlUp).padStart(13)}`);
console.log(`server → download    ${rate(r.download).padStart(13)}        ${r.downloadRatio.toFixed(2)}`);
console.log(`server → curl        ${rate(r.curlDown).padStart(13)}`);
console.log(`(per round, upload/download vs curl: ${r.ratios})`);
console.log(`for scale: cp ${rate(r.cp)} (${r.cpSeconds.toFixed(2)} s), cp + sync ${rate(r.cpSync)}, node read+sha256+write ${rate(r.hashCopy)}`);
console.log('process      peak RSS   growth (goal < 64 MiB)');
console.log(`agent        ${MiB(r.agentPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.agentGrowth).toFixed(1)} MiB`);
console.log(`server       ${MiB(r.serverPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.serverGrowthUpload).toFixed(1)} MiB upload, ${MiB(r.serverGrowthDownload).toFixed(1)} MiB download`);
console.log(`downloader   ${MiB(r.downloaderPeak).toFixed(0).padStart(5)} MiB  ${MiB(r.downloaderGrowth).toFixed(1)} MiB (vs downloading a tiny output)`);
if (!r.hwmReset) console.log('(VmHWM could not be reset: growth uses sampled RSS and may include start-up peaks)');
console.log(`goals: RSS growth ${rssMet ? 'MET' : 'NOT MET'}; throughput ≥ ${CURL_GOAL} × curl ${speedMet ? 'MET' : 'NOT MET'}`);

await recordResult(
  'Outputs against curl',
  ['date', 'machine', 'load avg before → after', 'MiB × rounds', 'agent → server (curl → server)', 'server → download (server → curl)', 'ratio vs curl up / down (per round)', 'cp, node sha256 copy', 'RSS growth agent / server / downloader', 'met (RSS, speed)'],
  [
    today(),
    machineLabel(),
    load,
    `${MIB} × ${ROUNDS}`,
    `${rate(r.upload)} (${rate(r.curlUp)})`,
    `${rate(r.download)} (${rate(r.curlDown)})`,
    `${r.uploadRatio.toFixed(2)} / ${r.downloadRatio.toFixed(2)} (${r.ratios})`,
    `${rate(r.cp)}, ${rate(r.hashCopy)}`,
    `${MiB(r.agentGrowth).toFixed(1)} / ${MiB(serverGrowth).toFixed(1)} / ${MiB(r.downloaderGrowth).toFixed(1)} MiB`,
    `${rssMet ? 'yes' : 'no'}, ${speedMet ? 'yes' : 'no'}`,
  ],
);
