// Spawning the real product (built CLI) for benchmarks, and small HTTP helpers.
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
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

/** Start `ufdl-agent serve` on a fresh data dir; returns { url, dataDir, child, stop() }. */
export async function startServe({ extraArgs = [], env = {} } = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'ufdl-bench-'));
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, '--port', String(port), ...extraArgs], {
    env: { ...process.env, UFDL_ADMIN_USER: ADMIN.username, UFDL_ADMIN_PASSWORD: ADMIN.password, UFDL_AGENT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/livez`);
  return {
    url,
    dataDir,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
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
