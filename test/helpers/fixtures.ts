/**
 * Test data for the jobs half of the server, written straight into the test server's database (its
 * SQLite file, or its PostgreSQL database through the store's own synchronous handle) through a second
 * connection: users, nodes, templates and jobs, plus access tokens minted with the
 * server's own signing secret. This keeps the jobs tests independent of the user, node and
 * create-job routes; those have their own tests.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { onTestFinished } from 'vitest';
import { TokenService } from '../../src/server/auth.js';
import type { Db } from '../../src/server/store/db.js';
import { PostgresDatabase } from '../../src/server/store/postgres/database.js';
import { api, startTestServer, type ApiResponse, type LocalTestServer, type TestServer } from './server.js';

export const ADMIN_PK = 1;

export interface TestUser {
  pk: number;
  token: string;
}

export interface JobSpec {
  template?: number;
  creator?: number;
  description?: string;
  inputValues?: Record<string, unknown>;
}

export class Fixtures {
  readonly server: TestServer;
  readonly db: Db;
  readonly #tokens: TokenService;
  #nodeCount = 0;
  #userCount = 0;
  #template: number | undefined;

  constructor(server: TestServer) {
    this.server = server;
    if (server.databaseUrl === undefined) {
      this.db = new Database(join(server.dataDir, 'ufdl.sqlite3'));
      this.db.pragma('busy_timeout = 5000');
    } else {
      this.db = new PostgresDatabase({ connection: { connectionString: server.databaseUrl } }).asDb();
    }
    const { value } = this.db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string };
    this.#tokens = new TokenService(value, { accessSeconds: 3600, refreshSeconds: 7200 });
  }

  get url(): string {
    return this.server.url;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  token(userPk: number): Promise<string> {
    return this.#tokens.issue(userPk, 'access');
  }

  /** A user (not staff unless `admin`), with an access token. */
  async user(options: { admin?: boolean; name?: string } = {}): Promise<TestUser> {
    const name = options.name ?? `user${++this.#userCount}`;
    const { lastInsertRowid } = this.db
      .prepare(`INSERT INTO users (username, password_hash, is_staff, date_joined) VALUES (?, 'x', ?, ?)`)
      .run(name, options.admin ? 1 : 0, new Date().toISOString());
    const pk = Number(lastInsertRowid);
    return { pk, token: await this.token(pk) };
  }

  /** A node registered by `owner` (default: the admin), seen now. */
  node(owner = ADMIN_PK, options: { lastSeen?: string | null } = {}): number {
    const n = ++this.#nodeCount;
    const lastSeen = options.lastSeen === undefined ? new Date().toISOString() : options.lastSeen;
    const { lastInsertRowid } = this.db
      .prepare(`INSERT INTO nodes (ip, "index", cpu_mem, owner, last_seen) VALUES (?, ?, ?, ?, ?)`)
      .run(`10.0.${Math.floor(n / 250)}.${n % 250}`, 0, 1024 ** 3, owner, lastSeen);
    return Number(lastInsertRowid);
  }

  template(name = 'test-template'): number {
    const { lastInsertRowid } = this.db
      .prepare(
        `INSERT INTO templates (name, version, type, executor_class, parameters, creator, creation_time)
         VALUES (?, 1, 'Run', 'ufdl_agent.Command', '{}', ?, ?)`,
      )
      .run(name, ADMIN_PK, new Date().toISOString());
    return Number(lastInsertRowid);
  }

  /** A CREATED job (the template is created on first use). */
  job(spec: JobSpec = {}): number {
    const template = spec.template ?? (this.#template ??= this.template());
    const { lastInsertRowid } = this.db
      .prepare(
        `INSERT INTO jobs (template, description, input_values, parameter_values, creator, creation_time)
         VALUES (?, ?, ?, '{}', ?, ?)`,
      )
      .run(template, spec.description ?? '', JSON.stringify(spec.inputValues ?? {}), spec.creator ?? ADMIN_PK, new Date().toISOString());
    return Number(lastInsertRowid);
  }

  jobs(count: number, spec: JobSpec = {}): number[] {
    return this.db.transaction(() => Array.from({ length: count }, () => this.job(spec)))();
  }

  /** The raw job row, for assertions on columns the JSON does not show. */
  jobRow(pk: number): Record<string, unknown> | undefined {
    return this.db.prepare('SELECT * FROM jobs WHERE pk = ?').get(pk) as Record<string, unknown> | undefined;
  }

  nodeRow(pk: number): { current_job: number | null; last_seen: string | null } {
    return this.db.prepare('SELECT current_job, last_seen FROM nodes WHERE pk = ?').get(pk) as {
      current_job: number | null;
      last_seen: string | null;
    };
  }

  /** `api()` as the admin (or `as`), optionally acting as `node`. */
  async call<T = any>(
    method: string,
    path: string,
    opts: { as?: TestUser | string | null; node?: number; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const token = opts.as === null ? undefined : typeof opts.as === 'string' ? opts.as : opts.as ? opts.as.token : await this.adminToken();
    return api<T>(this.url, method, path, {
      ...(token === undefined ? {} : { token }),
      ...(opts.node === undefined ? {} : { nodeId: opts.node }),
      ...(opts.json === undefined ? {} : { json: opts.json }),
      ...(opts.body === undefined ? {} : { body: opts.body }),
      ...(opts.headers === undefined ? {} : { headers: opts.headers }),
    });
  }

  #adminToken: Promise<string> | undefined;
  adminToken(): Promise<string> {
    return (this.#adminToken ??= this.token(ADMIN_PK));
  }

  /** Drive a job to STARTED as `node` (acquire + start), asserting each step succeeds. */
  async startAs(node: number, job: number, as?: TestUser): Promise<void> {
    for (const [method, path] of [
      ['GET', `/v1/jobs/${job}/acquire`],
      ['POST', `/v1/jobs/${job}/start`],
    ] as const) {
      const res = await this.call(method, path, { node, ...(as ? { as } : {}), ...(method === 'POST' ? { json: { send_notification: 'email' } } : {}) });
      if (res.status !== 200) throw new Error(`${method} ${path} → ${res.status} ${res.text}`);
    }
  }
}

/** A fresh test server with fixtures on its database; both closed when the test finishes. */
export async function startWithFixtures(options: Parameters<typeof startTestServer>[0] = {}): Promise<Fixtures & { server: LocalTestServer }> {
  const server = await startTestServer(options);
  const fixtures = new Fixtures(server) as Fixtures & { server: LocalTestServer };
  onTestFinished(() => fixtures.close());
  return fixtures;
}
