// The agent side of the benchmarks: start `ufdl-agent run` against a server, import a template,
// create jobs and wait for them, and make sure every process a benchmark started is gone when it
// ends — normally, on an exception, or on Ctrl-C.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, CLI, call, login } from './processes.mjs';

const children = new Set();
const tempDirs = new Set();

/** Remember a child process: it is SIGKILLed when the benchmark exits, whatever the way. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.once('exit', () => {
  killAll();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A fresh directory under `parent` (default the system temp dir), removed by {@link cleanup}. */
export async function tempDir(prefix, parent = tmpdir()) {
  const dir = await mkdtemp(join(parent, prefix));
  tempDirs.add(dir);
  return dir;
}

/** Remove `dir` at the end too (e.g. a server's data dir). */
export function adoptDir(dir) {
  tempDirs.add(dir);
  return dir;
}

/**
 * Start `ufdl-agent serve` (see processes.mjs) with its process tracked, and its data dir removed at
 * the end unless `keepData` (a data dir the caller reuses across runs).
 */
export async function startTrackedServe({ keepData = false, ...options } = {}) {
  const { startServe } = await import('./processes.mjs');
  const server = await startServe(options);
  track(server.child);
  if (!keepData) adoptDir(server.dataDir);
  return server;
}

/** Stop what is still running and remove the temp dirs. Call it in `finally`. */
export async function cleanup() {
  killAll();
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Start `ufdl-agent run` working for `serverUrl` with its journal and work dir under `dir`: one slot,
 * no status endpoint, no free-disk floor. `env` adds or overrides `UFDL_AGENT_*` settings;
 * `nodeArgs` go to node itself; `stdout` 'inherit' shows the agent's log lines.
 */
export function startAgent({ serverUrl, dir, env = {}, nodeArgs = [], logLevel = 'warn', stdout = 'ignore' }) {
  // UFDL_BENCH_AGENT_LOG=debug shows the agent's log (to see where a benchmark's time goes).
  if (process.env.UFDL_BENCH_AGENT_LOG) {
    logLevel = process.env.UFDL_BENCH_AGENT_LOG;
    stdout = 'inherit';
  }
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'run'], {
    env: {
      ...process.env,
      UFDL_AGENT_SERVER_URL: serverUrl,
      UFDL_AGENT_SERVER_USERNAME: ADMIN.username,
      UFDL_AGENT_SERVER_PASSWORD: ADMIN.password,
      UFDL_AGENT_WORK_DIR: join(dir, 'work'),
      UFDL_AGENT_JOURNAL: join(dir, 'journal.sqlite3'),
      UFDL_AGENT_SLOTS: '1',
      UFDL_AGENT_STATUS_PORT: '-1',
      UFDL_AGENT_MIN_FREE_DISK: '0',
      UFDL_AGENT_LOG_LEVEL: logLevel,
      ...env,
    },
    stdio: ['ignore', stdout, 'inherit'],
  });
  return track(child);
}

/** An access token that is renewed before it expires (tokens live 5 minutes by default). */
export function session(url) {
  let token = null;
  let at = 0;
  return async () => {
    if (token === null || Date.now() - at > 120_000) {
      token = await login(url);
      at = Date.now();
    }
    return token;
  };
}

/** Import a `Run` template for `ufdl_agent.Shell` running `script`; returns its pk. */
export async function importShellTemplate(url, token, name, script, outputs) {
  const parameters = { body: { types: ['str'], default: script, const: true, help: 'benchmark script' } };
  if (outputs) parameters.outputs = { types: ['JSON'], default: outputs, const: true, help: 'declared outputs' };
  const template = await call(url, 'POST', '/v1/job-templates/import', {
    token,
    json: {
      name,
      version: 1,
      description: 'benchmark template',
      scope: 'public',
      licence: 'Apache 2.0',
      specific: { job_type: 'Run', executor_class: 'ufdl_agent.Shell', required_packages: '', parameters },
    },
  });
  return template.pk;
}

/** Create a job; `startedAt` is the wall clock (ms, fractional) just before the request was sent. */
export async function createJob(url, token, templatePk) {
  const startedAt = performance.timeOrigin + performance.now();
  const job = await call(url, 'POST', `/v1/job-templates/${templatePk}/create-job`, {
    token,
    json: { input_values: {}, parameter_values: {}, description: 'benchmark' },
  });
  return { pk: job.pk, startedAt, answeredAt: performance.timeOrigin + performance.now() };
}

/** Poll the job until it has ended (end_time set); returns it. Throws after `timeoutMs`. */
export async function waitJobEnd(url, getToken, pk, { timeoutMs = 120_000, everyMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await call(url, 'GET', `/v1/jobs/${pk}`, { token: await getToken() });
    if (job.end_time) {
      if (job.error_reason) throw new Error(`job ${pk} failed: ${job.error_reason}`);
      return job;
    }
    if (Date.now() > deadline) throw new Error(`job ${pk} did not end within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** `uptime`'s load averages, for the record next to each figure. */
export async function loadAverage() {
  const { loadavg } = await import('node:os');
  return loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}

/** A flag value as a positive number, or exit with a clear message. */
export function positive(name, value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name}: expected a positive number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

/**
 * Node flags that write a CPU profile of a process into `dir` when it exits cleanly (SIGTERM), for
 * `--profile DIR` of the benchmarks; none when `dir` is undefined. Summarise a profile with
 * `node bench/lib/profile-summary.mjs FILE`.
 */
export function profileArgs(dir, name) {
  return dir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`];
}
