/**
 * Shared by the CLI command tests: build the package once, run the built CLI as a child process with
 * a timeout, and drive jobs through their lifecycle with the API as a node would (the agent is not
 * needed for that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer, type TestServer } from '../helpers/server.js';
import { sharedTempDir } from '../helpers/temp-dir.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const MAIN = join(ROOT, 'dist/cli/main.js');
export const TEMPLATES = ['predict', 'shell-hello', 'train-epochs'].map((name) => join(ROOT, 'config/templates', `${name}.json`));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
}

/** The environment of a CLI run against `server` as the admin; no configuration file, no stray env. */
export function serverEnv(server: TestServer, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    UFDL_AGENT_SERVER_URL: server.url,
    UFDL_AGENT_SERVER_USERNAME: ADMIN_USER,
    UFDL_AGENT_SERVER_PASSWORD: ADMIN_PASSWORD,
    ...extra,
  };
}

/**
 * The CLI keeps its tokens in the user's cache directory: the commands of a test file share one of
 * their own (as a person's commands do), and never touch the real one.
 */
const cacheHome = sharedTempDir('ufdl-cli-cache-');

function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { XDG_CACHE_HOME: cacheHome() };
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('UFDL_') && key !== 'XDG_CACHE_HOME') env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/** Run `node dist/cli/main.js …args`; resolves with the exit status and output (never rejects). */
export function cli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

export interface RunningCli {
  result: Promise<CliResult>;
  /** The CLI process (to send it signals). */
  child: ChildProcess;
  /** Its stdout so far. */
  stdout(): string;
  /** Resolves once stdout matches `pattern` (rejects if the process ends first). */
  stdoutMatches(pattern: RegExp): Promise<void>;
}

/** Start the CLI and follow its stdout while it runs. */
export function startCli(args: string[], options: RunOptions = {}): RunningCli {
  let stdoutSoFar = '';
  const waiters: { pattern: RegExp; resolve: () => void; reject: (err: Error) => void }[] = [];
  const check = () => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(stdoutSoFar)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd ?? ROOT, env: childEnv(options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const result = new Promise<CliResult>((done) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      stdoutSoFar = stdout;
      check();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(`the CLI ended (${code ?? signal}) before stdout matched ${waiter.pattern}: ${stdout}${stderr}`));
      done({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
  // A test that ends early (a failed expectation) must not leave its CLI running against a server
  // and a directory that are being removed. Outside a test (a suite's set-up) the timer alone stops it.
  try {
    onTestFinished(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await result;
    });
  } catch {
    // Not inside a test.
  }
  return {
    result,
    child,
    stdout: () => stdoutSoFar,
    stdoutMatches: (pattern) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ pattern, resolve, reject });
        check();
      }),
  };
}

/** An error result: the given status and exactly one line on stderr (no stack trace). */
export function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code, `stderr: ${result.stderr}`).toBe(code);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

/** A node registered by the admin, and the calls a worker makes as that node. */
export class TestNode {
  constructor(
    readonly server: TestServer,
    readonly pk: number,
  ) {}

  static async create(server: TestServer, ip = '10.9.8.7'): Promise<TestNode> {
    const res = await api(server.url, 'POST', '/v1/nodes/create', { token: server.adminToken, json: { ip, index: 0, cpu_mem: 1024 ** 3 } });
    expect(res.status, res.text).toBe(201);
    return new TestNode(server, res.body.pk as number);
  }

  async call(method: string, path: string, opts: { json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {}) {
    const res = await api(this.server.url, method, path, { token: this.server.adminToken, nodeId: this.pk, ...opts });
    expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
    return res;
  }

  async acquireAndStart(job: number): Promise<void> {
    await this.call('GET', `/v1/jobs/${job}/acquire`);
    await this.call('POST', `/v1/jobs/${job}/start`, { json: { send_notification: 'email' } });
  }

  progress(job: number, value: string, data: Record<string, unknown> = {}) {
    return this.call('POST', `/v1/jobs/${job}/progress/${value}`, { json: data });
  }

  upload(job: number, name: string, type: string, body: string) {
    return this.call('POST', `/v1/jobs/${job}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}`, {
      body,
      headers: { 'content-type': 'application/data', 'content-disposition': `attachment; filename=${name}` },
    });
  }

  finish(job: number, error?: string) {
    return this.call('POST', `/v1/jobs/${job}/finish`, { json: { success: error === undefined, send_notification: 'email', ...(error === undefined ? {} : { error }) } });
  }
}

/** The pks of the server's jobs, newest first. */
export async function jobPks(server: TestServer): Promise<number[]> {
  const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: {} });
  return (res.body as { pk: number }[]).map((j) => j.pk).sort((a, b) => b - a);
}

/** A real server with the example templates imported through the CLI itself. */
export async function serverWithTemplates(): Promise<TestServer> {
  const server = await startTestServer();
  const imported = await cli(['templates', 'import', ...TEMPLATES], { env: serverEnv(server) });
  expect(imported.code, imported.stderr).toBe(0);
  return server;
}
