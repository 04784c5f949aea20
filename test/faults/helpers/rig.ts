/**
 * One scenario's world: a temporary directory, the processes it starts (server, agents), the run log
 * and the admin's API. `Rig.forTest()` in the test: when it finishes, every process is SIGKILLed, job
 * children included, and the directory is removed, pass or fail, unless `UFDL_FAULTS_KEEP=1` (its path
 * is printed then).
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { call, ServerApi } from './http.js';
import { assertBuilt, CLI, DIST, freePort, ProcessTracker, SERVE_MAIN, sleep, until, type Proc } from './procs.js';
import { readRunLog, runLogTemplate, type RunLog } from './runlog.js';

export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'fault-campaign-admin';

export interface ServerSpec {
  /** Fixed port (to restart on the same address). @default a free port */
  port?: number;
  /** Reuse this data directory (restart). @default `<dir>/server-data` */
  dataDir?: string;
  extensions?: boolean;
  lostAfterSeconds?: number;
  /**
   * The sweeper interval is not a CLI option (`buildApp()` only); when set, the server runs through
   * `serve-main.mjs` on the built code instead of `ufdl-agent serve`.
   */
  sweepIntervalSeconds?: number;
  /** Log file name. @default 'server' */
  logName?: string;
  /** Keep the server's state in this PostgreSQL database (`serve --database`; the password in the URL). */
  databaseUrl?: string;
}

export interface ServerHandle {
  proc: Proc;
  url: string;
  port: number;
  dataDir: string;
  spec: ServerSpec;
}

export interface AgentSpec {
  name: string;
  serverUrl: string;
  username?: string;
  password?: string;
  slots?: number;
  nodeIndex?: number;
  /** Work dir and journal live here. @default `<dir>/<name>` */
  dir?: string;
  /** `UFDL_AGENT_FAIL_POINTS`. */
  failPoints?: string;
  /** More `UFDL_AGENT_*` settings (override the quick defaults). */
  env?: Record<string, string>;
}

export interface AgentHandle {
  proc: Proc;
  spec: AgentSpec;
  dir: string;
}

export class Rig {
  readonly dir: string;
  readonly tracker: ProcessTracker;
  readonly runLogFile: string;
  readonly locksDir: string;
  readonly #servers: ServerHandle[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.tracker = new ProcessTracker(dir);
    this.runLogFile = join(dir, 'runs.log');
    this.locksDir = join(dir, 'locks');
    mkdirSync(this.locksDir, { recursive: true });
  }

  static create(name: string): Rig {
    assertBuilt();
    return new Rig(mkdtempSync(join(tmpdir(), `ufdl-faults-${name}-`)));
  }

  /** A rig disposed when the current test finishes, pass or fail. */
  static forTest(name: string): Rig {
    const rig = Rig.create(name);
    onTestFinished(async (ctx) => {
      await rig.dispose(ctx.task.result?.state === 'fail' || (ctx.task.result?.errors?.length ?? 0) > 0);
    });
    return rig;
  }

  /**
   * Kill everything this scenario started, then remove its directory unless `UFDL_FAULTS_KEEP=1`:
   * a campaign run many times must not fill the temp dir with failed scenarios' data (a failure is
   * replayed with the seed it printed, and the directory kept on purpose).
   */
  async dispose(failed: boolean): Promise<void> {
    this.tracker.addJobPids(readRunLog(this.runLogFile).pids);
    await this.tracker.killAll();
    if (process.env.UFDL_FAULTS_KEEP === '1') {
      console.log(`fault scenario files kept in ${this.dir}`);
      return;
    }
    if (failed) console.log(`fault scenario files removed; run again with UFDL_FAULTS_KEEP=1 (and the seed it printed) to keep them`);
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  runLog(): RunLog {
    const log = readRunLog(this.runLogFile);
    this.tracker.addJobPids(log.pids);
    return log;
  }

  /** The campaign's workload template (see runlog.ts). */
  workloadTemplate(name: string, tickSeconds = 0.2): Record<string, unknown> {
    return runLogTemplate({ name, runLog: this.runLogFile, locksDir: this.locksDir, tickSeconds });
  }

  // ── the server ────────────────────────────────────────────────────────────────────────────────

  async startServer(spec: ServerSpec = {}): Promise<ServerHandle> {
    const port = spec.port ?? (await freePort());
    const dataDir = spec.dataDir ?? join(this.dir, 'server-data');
    const logName = spec.logName ?? 'server';
    let proc: Proc;
    if (spec.sweepIntervalSeconds !== undefined) {
      const options = {
        dataDir,
        host: '127.0.0.1',
        port,
        extensions: spec.extensions ?? true,
        lostAfterSeconds: spec.lostAfterSeconds,
        sweepIntervalSeconds: spec.sweepIntervalSeconds,
        accessTokenSeconds: 3600,
        adminUser: ADMIN_USER,
        adminPassword: ADMIN_PASSWORD,
        logLevel: 'info',
      };
      proc = this.tracker.spawnNode('server', [SERVE_MAIN], { UFDL_FAULTS_DIST: DIST, UFDL_FAULTS_SERVER_OPTIONS: JSON.stringify(options) }, logName);
    } else {
      const env: Record<string, string> = {
        UFDL_ADMIN_USER: ADMIN_USER,
        UFDL_ADMIN_PASSWORD: ADMIN_PASSWORD,
        UFDL_AGENT_SERVE_ACCESS_TOKEN_LIFETIME: '3600',
        UFDL_AGENT_LOG_LEVEL: 'info',
      };
      if (spec.lostAfterSeconds !== undefined) env.UFDL_AGENT_SERVE_LOST_AFTER = String(spec.lostAfterSeconds);
      const args = [CLI, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', String(port)];
      if (spec.extensions === false) args.push('--no-extensions');
      if (spec.databaseUrl !== undefined) {
        // The password through the environment, as a deployment passes it.
        const url = new URL(spec.databaseUrl);
        env.UFDL_DATABASE_PASSWORD = decodeURIComponent(url.password);
        url.password = '';
        args.push('--database', url.toString());
      }
      proc = this.tracker.spawnNode('server', args, env, logName);
    }
    const url = `http://127.0.0.1:${port}`;
    await until(
      async () => {
        if (!proc.alive) throw new Error(`the server exited: ${JSON.stringify(proc.exit)}; log ${proc.logFile}`);
        try {
          return (await call(url, 'GET', '/livez', { timeoutMs: 2000 })).status === 200;
        } catch {
          return false;
        }
      },
      60_000,
      `the server on ${url} to answer /livez`,
      100,
    );
    const handle = { proc, url, port, dataDir, spec: { ...spec, port, dataDir } };
    this.#servers.push(handle);
    return handle;
  }

  /** SIGKILL the server and start it again on the same port and data. */
  async restartServer(server: ServerHandle, killFirst = true): Promise<ServerHandle> {
    if (killFirst) await server.proc.kill('SIGKILL');
    return this.startServer(server.spec);
  }

  admin(server: { url: string }): ServerApi {
    return new ServerApi(server.url, ADMIN_USER, ADMIN_PASSWORD);
  }

  // ── agents ────────────────────────────────────────────────────────────────────────────────────

  /** Start `ufdl-agent run` and wait until it says it runs (registered, polling). */
  async startAgent(spec: AgentSpec, waitRunning = true): Promise<AgentHandle> {
    const dir = spec.dir ?? join(this.dir, spec.name);
    mkdirSync(dir, { recursive: true });
    const env: Record<string, string> = {
      UFDL_AGENT_SERVER_URL: spec.serverUrl,
      UFDL_AGENT_SERVER_USERNAME: spec.username ?? ADMIN_USER,
      UFDL_AGENT_SERVER_PASSWORD: spec.password ?? ADMIN_PASSWORD,
      UFDL_AGENT_SERVER_TIMEOUT: '5',
      UFDL_AGENT_WORK_DIR: join(dir, 'work'),
      UFDL_AGENT_JOURNAL: join(dir, 'journal.sqlite3'),
      UFDL_AGENT_SLOTS: String(spec.slots ?? 1),
      UFDL_AGENT_NODE_INDEX: String(spec.nodeIndex ?? 0),
      UFDL_AGENT_NODE_IP: '127.0.0.1',
      UFDL_AGENT_POLL_INTERVAL: '0.2',
      UFDL_AGENT_ERROR_BACKOFF: '0.2,0.5,1',
      UFDL_AGENT_WAIT: '5',
      UFDL_AGENT_PROGRESS_INTERVAL: '0.2',
      UFDL_AGENT_CANCEL_CHECK_INTERVAL: '0.5',
      UFDL_AGENT_KILL_GRACE: '0.5',
      // Should a stray agent ever get a SIGINT/SIGTERM (Ctrl-C on the campaign), it exits soon.
      UFDL_AGENT_DRAIN_TIMEOUT: '2',
      UFDL_AGENT_STATUS_PORT: '-1',
      UFDL_AGENT_MIN_FREE_DISK: '0',
      UFDL_AGENT_LOG_LEVEL: 'debug',
      ...(spec.failPoints ? { UFDL_AGENT_FAIL_POINTS: spec.failPoints } : {}),
      ...spec.env,
    };
    const proc = this.tracker.spawnNode(spec.name, [CLI, 'run'], env);
    const handle = { proc, spec, dir };
    if (waitRunning) await this.agentRunning(handle, 60_000);
    return handle;
  }

  /** Wait for this incarnation's "agent running" line. */
  async agentRunning(agent: AgentHandle, timeoutMs: number): Promise<void> {
    await agent.proc.waitForLog((l) => l.msg === 'agent running', timeoutMs);
  }

  /** Give the machine a moment (no assertion depends on it). */
  pause(ms: number): Promise<void> {
    return sleep(ms);
  }
}
