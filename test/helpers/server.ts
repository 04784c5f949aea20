/**
 * Start a real embedded server on loopback (port 0) in this process, on its own temporary data
 * directory, and close it when the test finishes; or one that can be stopped and started again on
 * the same data and port (`restartableServer()`). `api()` is a small fetch wrapper for tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { onTestFinished } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import type { ServerOptions } from '../../src/server/options.js';
import { databaseUrlFor, dropDatabaseFor } from './store-under-test.js';
import { tempDir } from './temp-dir.js';

const REPO = resolve(import.meta.dirname, '../..');

export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface TestServer {
  url: string;
  dataDir: string;
  /** The server's PostgreSQL database, when the suite runs on PostgreSQL (store-under-test.ts). */
  databaseUrl?: string | undefined;
  close(): Promise<void>;
  /** An access token for the admin user. */
  adminToken: string;
  /** Log in as `username` and return its access token. */
  login(username: string, password: string): Promise<string>;
}

/** A server of this process ({@link startTestServer}): a test can also see the requests it receives. */
export interface LocalTestServer extends TestServer {
  /**
   * Call `listener` with every request as it arrives, before the server handles it (in the order the
   * server reads them), with the response it will send: what a test asserts about who asked what,
   * and when, that no answer shows.
   */
  onRequest(listener: (request: IncomingMessage, response: ServerResponse) => void): void;
}

export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<LocalTestServer> {
  const dataDir = options.dataDir ?? (await tempDir('ufdl-test-'));
  // A store the caller names (`databaseUrl`, or undefined for SQLite) is the one the returned server
  // says it runs on, so that fixtures open that database and not the suite's default.
  const databaseUrl = 'databaseUrl' in options ? options.databaseUrl : await databaseUrlFor(dataDir);
  const { app } = await buildApp({
    dataDir,
    databaseUrl,
    port: 0,
    adminUser: ADMIN_USER,
    adminPassword: ADMIN_PASSWORD,
    logLevel: false,
    ...options,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${address.port}`;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    if (!options.dataDir) dropDatabaseFor(dataDir);
  };
  onTestFinished(close);
  const login = (username: string, password: string) => loginAt(url, username, password);
  const adminToken = (await freshAdminToken(app, options)) ?? (await login(ADMIN_USER, ADMIN_PASSWORD).catch(() => ''));
  const onRequest = (listener: (request: IncomingMessage, response: ServerResponse) => void) => void app.server.on('request', listener);
  return { url, dataDir, databaseUrl, close, adminToken, login, onRequest };
}

/**
 * The admin's access token, issued by the server itself, when this start made the admin with the
 * test's credentials (a fresh data directory, the default user and password): what logging in would
 * answer, without a password check (scrypt, a tenth of a second on these machines, at every one of the
 * run's thousands of server starts). Undefined otherwise: the caller logs in.
 */
async function freshAdminToken(app: FastifyInstance, options: Partial<ServerOptions>): Promise<string | undefined> {
  const fresh = options.dataDir === undefined && (options.adminUser ?? ADMIN_USER) === ADMIN_USER && (options.adminPassword ?? ADMIN_PASSWORD) === ADMIN_PASSWORD;
  if (!fresh) return undefined;
  const admin = app.ufdl.db.prepare('SELECT pk, token_generation FROM users WHERE username = ? AND is_active = 1').get(ADMIN_USER) as
    | { pk: number; token_generation: number }
    | undefined;
  return admin && app.ufdl.tokens.issue(Number(admin.pk), 'access', Number(admin.token_generation));
}

/** Log in as `username` on the server at `url` and return its access token. */
export async function loginAt(url: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${url}/v1/auth/obtain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access: string }).access;
}

export interface RestartableServer {
  /** The same URL, data directory and admin token across restarts; `close()` stops it. */
  server: TestServer;
  /** Start it again on the same data directory and port. */
  start(): Promise<void>;
  /** Stop it (idempotent); the data directory stays. */
  stop(): Promise<void>;
}

/**
 * An embedded server that can be stopped and started again on the same data directory and port;
 * stopped and its data directory removed when the test finishes.
 */
export async function restartableServer(options: Partial<ServerOptions> = {}): Promise<RestartableServer> {
  const dataDir = await tempDir('ufdl-restart-');
  const databaseUrl = await databaseUrlFor(dataDir);
  let app: FastifyInstance | undefined;
  let port = 0;
  const start = async () => {
    ({ app } = await buildApp({ dataDir, databaseUrl, port, adminUser: ADMIN_USER, adminPassword: ADMIN_PASSWORD, logLevel: false, ...options }));
    await app.listen({ host: '127.0.0.1', port });
    port = (app.server.address() as { port: number }).port;
  };
  const stop = async () => {
    await app?.close();
    app = undefined;
  };
  onTestFinished(async () => {
    await stop();
    dropDatabaseFor(dataDir);
  });
  await start();
  const url = `http://127.0.0.1:${port}`;
  const adminToken = await loginAt(url, ADMIN_USER, ADMIN_PASSWORD);
  const server: TestServer = { url, dataDir, databaseUrl, adminToken, close: stop, login: (username, password) => loginAt(url, username, password) };
  return { server, start, stop };
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

/** `api(url, 'POST', '/v1/jobs/list', { token, nodeId, json: {...} })` */
export async function api<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; nodeId?: number | string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.nodeId !== undefined) headers['node-id'] = String(opts.nodeId);
  let body: BodyInit | undefined = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: leave the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers, text };
}

/** A port nothing listens on right now (for a process that must be started on a known port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited (a SIGKILL from a fail point included). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/**
 * `ufdl-agent serve` from the built CLI (build first: `buildOnce()`) as its own process on `dataDir`
 * and `port`, the admin's password {@link ADMIN_PASSWORD}; resolves once `/livez` answers. SIGKILLed
 * when the test finishes if still running. `env` adds variables (e.g. `UFDL_SERVER_FAIL_POINTS`);
 * `databaseUrl` puts its state in that PostgreSQL database (default: the store under test's choice).
 */
export async function spawnServe(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
  options: { databaseUrl?: string | undefined } = {},
): Promise<ServeProcess> {
  const main = new URL('../../dist/cli/main.js', import.meta.url).pathname;
  const args = [main, 'serve', '--data', dataDir, '--port', String(port)];
  const database = options.databaseUrl ?? (await databaseUrlFor(dataDir));
  const databaseEnv: Record<string, string> = {};
  if (database !== undefined) {
    // The password through the environment, as a deployment would, not on the command line.
    const url = new URL(database);
    databaseEnv.UFDL_DATABASE_PASSWORD = decodeURIComponent(url.password);
    url.password = '';
    args.push('--database', url.toString());
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, UFDL_ADMIN_PASSWORD: ADMIN_PASSWORD, UFDL_AGENT_LOG_LEVEL: 'warn', ...databaseEnv, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`serve exited (${child.exitCode ?? child.signalCode}):\n${stderr}`);
    try {
      if ((await fetch(`${url}/livez`)).ok) return { url, child, exited, stderr: () => stderr };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
