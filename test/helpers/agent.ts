/**
 * Agent tests: a real agent (in this process, or as a separate process for crash tests) against a
 * real embedded server, with short schedules so that suites stay fast on a busy 2-core machine.
 *
 * Set `UFDL_TEST_LOG=debug` to see the agent's log on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { expect, onTestFinished } from 'vitest';
import { createAgent, startAgent, type Agent, type AgentOptions } from '../../src/agent/index.js';
import type { RunOutcome } from '../../src/agent/job/context.js';
import { UfdlClient, WEBSOCKET_NOTIFICATIONS } from '../../src/client/api.js';
import type { JobNotification } from '../../src/protocol/wire.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, type TestServer } from './server.js';
import { tempDir } from './temp-dir.js';
import { eventually, until } from './wait.js';

export { until };
export { runTemplate, shellTemplate } from './templates.js';

export const REPO = resolve(import.meta.dirname, '../..');

/** Options that keep tests quick. */
export function fastAgentOptions(server: { url: string }, dir: string, over: Partial<AgentOptions> = {}): AgentOptions {
  return {
    serverUrl: server.url,
    username: ADMIN_USER,
    password: ADMIN_PASSWORD,
    workDir: join(dir, 'work'),
    journalFile: join(dir, 'journal.sqlite3'),
    slots: 1,
    pollScheduleS: [0.2],
    errorBackoffS: [0.2, 0.5],
    authRetryS: [0.3],
    waitSeconds: 5,
    cancelCheckIntervalMs: 300,
    progressIntervalMs: 100,
    drainTimeoutMs: 10_000,
    killGraceMs: 500,
    heartbeatIntervalMs: 500,
    requestTimeoutMs: 5_000,
    minFreeDiskBytes: 0,
    skipFailedForMs: 60_000,
    docker: false,
    status: { host: '127.0.0.1', port: 0 },
    nodeIp: '127.0.0.1',
    ...over,
  };
}

export function testLogger(name = 'agent'): Logger {
  const level = process.env.UFDL_TEST_LOG ?? 'silent';
  return pino({ level, name }, pino.destination(2));
}

/** A logger that keeps every line it writes, parsed, for tests that assert on the agent's log. */
export function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

export interface TestAgent {
  agent: Agent;
  dir: string;
  options: AgentOptions;
  close(): Promise<void>;
}

/** Start an agent in this process (no signal handlers), closed when the test finishes. */
export async function startTestAgent(server: { url: string }, over: Partial<AgentOptions> = {}, dir?: string, logger: Logger = testLogger()): Promise<TestAgent> {
  const base = dir ?? (await tempDir('ufdl-agent-'));
  const options = fastAgentOptions(server, base, over);
  const agent = await startAgent(options, logger, { handleSignals: false });
  const close = () => agent.close();
  onTestFinished(close);
  return { agent, dir: base, options, close };
}

/** How job `pk` leaves `agent`'s node (its `finished` event): listen before the job can end. */
export function outcomeOf(agent: Agent, pk: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    agent.on('finished', (event) => {
      if (event.jobPk === pk) resolve(event.outcome);
    });
  });
}

/**
 * An agent whose start is under way (not awaited: it may wait for the server for good), closed when
 * the test ends, and what its status endpoint (`options.status`, which must be set) says keeps it
 * from being ready: the reasons of `/readyz` while it answers 503, '' otherwise.
 */
export async function startingAgent(options: AgentOptions, logger: Logger = testLogger()): Promise<{ agent: Agent; starting: Promise<void>; notReadyBecause(): Promise<string> }> {
  const { status } = options;
  if (!status) throw new Error('startingAgent needs options.status');
  const agent = createAgent(options, logger, { handleSignals: false });
  const starting = agent.start();
  // Handled here too: a start that fails before the test awaits it is the test's to see, not an
  // unhandled rejection.
  starting.catch(() => {});
  onTestFinished(async () => {
    await agent.close();
    await starting.catch(() => {});
  });
  const notReadyBecause = async () => {
    const res = await fetch(`http://${status.host}:${status.port}/readyz`).catch(() => undefined);
    return res?.status === 503 ? ((await res.json()) as { reasons: string[] }).reasons.join(' ') : '';
  };
  return { agent, starting, notReadyBecause };
}

// ── server-side helpers ─────────────────────────────────────────────────────────────────────────

export const TEMPLATES_DIR = join(REPO, 'config', 'templates');

/** Import an example template (by file name without `.json`) or a spec; returns its pk. */
export async function importTemplate(server: TestServer, spec: string | Record<string, unknown>): Promise<number> {
  const body = typeof spec === 'string' ? (JSON.parse(readFileSync(join(TEMPLATES_DIR, `${spec}.json`), 'utf8')) as Record<string, unknown>) : spec;
  const res = await api(server.url, 'POST', '/v1/job-templates/import', { token: server.adminToken, json: body });
  if (res.status !== 200 && res.status !== 201) throw new Error(`import failed: ${res.status} ${res.text}`);
  return (res.body as { pk: number }).pk;
}

/** Every example template in `config/templates`. */
export function exampleTemplates(): string[] {
  return readdirSync(TEMPLATES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5));
}

export async function createJob(
  server: TestServer,
  templatePk: number,
  body: { input_values?: Record<string, { value: unknown; type: string }>; parameter_values?: Record<string, { value: unknown; type: string }>; description?: string; notifications?: boolean } = {},
): Promise<number> {
  const json: Record<string, unknown> = {
    input_values: body.input_values ?? {},
    parameter_values: body.parameter_values ?? {},
    description: body.description ?? '',
  };
  if (body.notifications) json.notification_override = WEBSOCKET_NOTIFICATIONS;
  const res = await api(server.url, 'POST', `/v1/job-templates/${templatePk}/create-job`, { token: server.adminToken, json });
  if (res.status !== 200 && res.status !== 201) throw new Error(`create-job failed: ${res.status} ${res.text}`);
  return (res.body as { pk: number }).pk;
}

export interface ServerJob {
  pk: number;
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  node: number | null;
  is_cancelled: boolean;
  outputs: { pk: number; name: string; type: string }[];
}

export async function getJob(server: TestServer, pk: number): Promise<ServerJob> {
  const res = await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken });
  if (res.status !== 200) throw new Error(`get job ${pk}: ${res.status} ${res.text}`);
  return res.body as ServerJob;
}

/** Poll the job until `done(job)` holds; the error names the job as it last was. */
export async function waitForJob(server: TestServer, pk: number, done: (job: ServerJob) => boolean, timeoutMs = 20_000): Promise<ServerJob> {
  let last: ServerJob | undefined;
  const reached = async () => {
    last = await getJob(server, pk);
    return done(last) ? last : undefined;
  };
  return eventually(reached, timeoutMs, `job ${pk} to reach the expected state`, 100).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}`);
  });
}

export const ended = (job: ServerJob) => job.end_time !== null;

/**
 * An agent started again on `options` (after the first was killed, or exited for a restart) runs
 * until job `pk` satisfies `done` (ended, by default), then is stopped, and must exit 0. A wait that
 * runs out shows the restarted agent's output, and `earlier`'s when given.
 */
export async function restartUntil(
  server: TestServer,
  pk: number,
  options: AgentOptions,
  done: (job: ServerJob) => boolean = ended,
  { timeoutMs = 30_000, earlier }: { timeoutMs?: number; earlier?: AgentProcess } = {},
): Promise<{ job: ServerJob; agent: AgentProcess }> {
  const agent = spawnAgent(options);
  const job = await waitForJob(server, pk, done, timeoutMs).catch((err: Error) => {
    const before = earlier ? `\n--- first agent ---\n${earlier.output().slice(-4000)}` : '';
    throw new Error(`${err.message}${before}\n--- second agent ---\n${agent.output().slice(-6000)}`);
  });
  agent.kill('SIGTERM');
  expect(await agent.exited, agent.output().slice(-3000)).toEqual({ code: 0, signal: null });
  return { job, agent };
}

/** Whether process `pid` still exists (a job's child, say). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
export const started = (job: ServerJob) => job.start_time !== null;

export async function downloadOutput(server: TestServer, jobPk: number, name: string, type = 'BLOB'): Promise<Buffer> {
  const res = await fetch(`${server.url}/v1/jobs/${jobPk}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}`, {
    headers: { authorization: `Bearer ${server.adminToken}` },
  });
  if (res.status !== 200) throw new Error(`download ${name} of job ${jobPk}: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

// ── agent as a separate process (crash and signal tests) ────────────────────────────────────────

export const AGENT_MAIN = join(REPO, 'test', 'fixtures', 'agent-main.mjs');

export interface AgentProcess {
  child: ChildProcess;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the agent wrote to stdout (JSON log lines) and stderr. */
  output(): string;
  /** Parsed JSON log lines so far. */
  lines(): Record<string, unknown>[];
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Spawn `test/fixtures/agent-main.mjs` (which imports the built `dist/agent/index.js`; build first)
 * with `options` and extra environment (e.g. `UFDL_AGENT_FAIL_POINTS`).
 */
export function spawnAgent(options: AgentOptions, env: Record<string, string> = {}, launch: { prefix?: readonly string[] } = {}): AgentProcess {
  // `prefix`: a command that runs the agent (e.g. in a UTS namespace of its own, with another hostname).
  const [command, ...args] = [...(launch.prefix ?? []), process.execPath, AGENT_MAIN];
  const child = spawn(command!, args, {
    env: { ...process.env, UFDL_TEST_AGENT_OPTIONS: JSON.stringify(options), UFDL_TEST_LOG: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    exited,
    output: () => `${out}\n--- stderr ---\n${err}`,
    lines,
    async waitForLog(match, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().find(match);
        if (found) return found;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agent exited before the expected log line:\n${out}\n${err}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for a log line:\n${out.slice(-4000)}\n${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill(signal = 'SIGTERM') {
      child.kill(signal);
    },
  };
}

/** Read a file of lines appended by test children (one line per run). */
export async function readRuns(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

/**
 * Watch job `pk` over the web-socket until it has ended and its `finish` message arrived; returns the
 * ended job and every message seen. `thenStart` (starting the agent, typically) runs once the watch
 * is connected: a watcher that connects after the job has moved on is sent one catch-up message in
 * place of the transitions it missed, so a test of every message must not race the agent.
 */
export async function watchUntilEnded(
  server: TestServer,
  pk: number,
  thenStart?: () => Promise<unknown>,
): Promise<{ job: ServerJob; messages: JobNotification[] }> {
  const watcher = new UfdlClient({ serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
  const messages: JobNotification[] = [];
  const watch = watcher.watchJob(pk, (m) => messages.push(m));
  try {
    if (thenStart) {
      await until(() => watch.connected, 30_000, 'the watch to connect');
      await thenStart();
    }
    const job = await waitForJob(server, pk, ended);
    if (job.error_reason === null) await until(() => messages.some((m) => m.transition === 'finish'), 5000, 'the finish notification');
    return { job, messages };
  } finally {
    watch.close();
    watcher.close();
  }
}
