// Spawning the real product (built CLI) for benchmarks, and small HTTP helpers.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The built CLI; `UFDL_BENCH_CLI` points elsewhere (a private build while others rebuild dist/). */
export const CLI = process.env.UFDL_BENCH_CLI ?? new URL('../../dist/cli/main.js', import.meta.url).pathname;
export const ADMIN = { username: 'admin', password: 'bench-admin-password' };

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Start `ufdl-agent serve` on a fresh data dir (or on `dataDir`, to start a stopped one again);
 * returns { url, dataDir, child, stop() }. `nodeArgs` go to node itself (e.g. `--cpu-prof`);
 * `parentDir` is where the data dir is made (default: the system temp dir);
 * `stop({ removeData: true })` also deletes the data dir.
 */
export async function startServe({ extraArgs = [], env = {}, nodeArgs = [], parentDir = tmpdir(), dataDir: existing } = {}) {
  const dataDir = existing ?? (await mkdtemp(join(parentDir, 'ufdl-bench-')));
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--data', dataDir, '--port', String(port), ...extraArgs], {
    env: { ...process.env, UFDL_ADMIN_USER: ADMIN.username, UFDL_ADMIN_PASSWORD: ADMIN.password, UFDL_AGENT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${url}/livez`);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // A data directory made here for a server that never came up is nobody's to remove later.
    if (!existing) await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
  return {
    url,
    dataDir,
    child,
    async stop({ removeData = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        // A server that does not stop within 10 s is killed: a benchmark must never hang on it.
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (removeData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function login(url, user = ADMIN) {
  const res = await fetch(`${url}/v1/auth/obtain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(user),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return (await res.json()).access;
}

export async function call(url, method, path, { token, nodeId, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (nodeId !== undefined) h['node-id'] = String(nodeId);
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const res = await fetch(`${url}${path}`, { method, headers: h, body });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

/** Sample a process's RSS (bytes) and CPU time (seconds) from /proc. */
export async function procStats(pid) {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rss: rssKb * 1024, peakRss: hwmKb * 1024, cpuSeconds: ticks / 100 };
}

/** CPU seconds of a process's main thread alone (the event loop of a node process). */
export async function mainThreadCpuSeconds(pid) {
  const { readFile } = await import('node:fs/promises');
  const stat = (await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/**
 * The server's own account of where its time went (`/metrics`, docs/OPERATIONS.md): event-loop busy
 * seconds and the disk syncs of group commit, as plain numbers to subtract one reading from another.
 */
export async function serverCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (line) => {
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? 0 : Number(found.slice(found.lastIndexOf(' ') + 1));
  };
  return {
    busySeconds: value('ufdl_server_event_loop_busy_seconds_total'),
    syncs: value('ufdl_server_durable_syncs_total{result="ok"}'),
    syncSeconds: value('ufdl_server_durable_sync_seconds_total'),
    released: value('ufdl_server_durable_waits_total'),
    batches: value('ufdl_server_write_batches_total'),
  };
}

/**
 * Reset a process's peak RSS (VmHWM) to its current RSS (`/proc/<pid>/clear_refs` value 5, Linux ≥
 * 4.0), so a later VmHWM is the peak of what happened since. Returns false where that is refused.
 */
export async function resetPeakRss(pid) {
  const { writeFile } = await import('node:fs/promises');
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Sample VmRSS of `pids` every 100 ms (a cross-check of VmHWM, which clear_refs may not reset);
 * returns a function that stops sampling and resolves with the peak of each pid.
 */
export function rssSampler(pids) {
  const peaks = new Map(pids.map((p) => [p, 0]));
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const pid of pids) {
        try {
          const { rss } = await procStats(pid);
          if (rss > peaks.get(pid)) peaks.set(pid, rss);
        } catch {
          // the process ended
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return peaks;
  };
}
