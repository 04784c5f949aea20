/**
 * Real OS processes for the fault campaign: the server (`ufdl-agent serve`, or `serve-main.mjs` when
 * the scenario needs an option the CLI does not offer) and agents (`ufdl-agent run`), started from the
 * built CLI with their stdout/stderr appended to log files in the scenario's directory, so a SIGKILL
 * is real and a failed run leaves its logs behind.
 *
 * Every process a scenario starts is tracked by its {@link ProcessTracker}; `killAll()` (called from
 * `afterEach`) SIGKILLs those still alive, by pid, and then the process groups of job children the
 * agents left behind (their own groups, so they survive an agent's SIGKILL by design). Nothing is
 * ever killed by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { sleep } from '../../helpers/wait.js';

export { sleep, until } from '../../helpers/wait.js';

export const REPO = resolve(import.meta.dirname, '../../..');

/** The built code the campaign runs: `dist/` of the repository, or `UFDL_FAULTS_DIST`. */
export const DIST = resolve(process.env.UFDL_FAULTS_DIST ?? join(REPO, 'dist'));
export const CLI = join(DIST, 'cli', 'main.js');
export const SERVE_MAIN = join(import.meta.dirname, 'serve-main.mjs');

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm run test:faults does)`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  #exit: Exit | null = null;

  constructor(name: string, child: ChildProcess, logFile: string) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolveExit(this.#exit);
      });
      child.once('error', () => {
        this.#exit ??= { code: -1, signal: null };
        resolveExit(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.#exit === null;
  }

  get exit(): Exit | null {
    return this.#exit;
  }

  /** SIGKILL (default) and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.alive) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
    return this.exited;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** The JSON log lines written since byte `from`. */
  jsonLines(from = 0): Record<string, unknown>[] {
    return this.log()
      .slice(from)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  /** Wait until a JSON log line (written after byte `from`) matches. */
  async waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.jsonLines(from).find(match);
      if (found) return found;
      if (!this.alive) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before the expected log line; log: ${this.logFile}\n${tail(this.log())}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for a log line; log: ${this.logFile}\n${tail(this.log())}`);
      await sleep(50);
    }
  }
}

export function tail(text: string, chars = 3000): string {
  return text.length <= chars ? text : `…${text.slice(-chars)}`;
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** The process group of a live process, from /proc (null when it is gone). */
export function processGroupOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : null;
  } catch {
    return null;
  }
}

export class ProcessTracker {
  readonly dir: string;
  readonly #procs: Proc[] = [];
  /** Pids of job children (from the run log); their groups are killed at the end. */
  readonly #jobPids = new Set<number>();

  constructor(dir: string) {
    this.dir = dir;
    // Last resort if the test process itself exits without its hooks: no process left behind.
    process.once('exit', () => {
      for (const p of this.#procs) if (p.alive) p.child.kill('SIGKILL');
    });
  }

  get procs(): readonly Proc[] {
    return this.#procs;
  }

  /**
   * Spawn `node <args>` with `env` added to a clean copy of this process's environment (no inherited
   * `UFDL_*` variables), output appended to `<dir>/<logName>.log`.
   */
  spawnNode(name: string, args: string[], env: Record<string, string>, logName = name): Proc {
    const logFile = join(this.dir, `${logName}.log`);
    const fd = openSync(logFile, 'a');
    writeSync(fd, `### ${new Date().toISOString()} start ${name}: node ${args.join(' ')}\n`);
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('UFDL_') && !k.startsWith('VITEST')));
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, args, { env: { ...base, ...env }, stdio: ['ignore', fd, fd], cwd: this.dir });
    } finally {
      closeSync(fd);
    }
    const proc = new Proc(name, child, logFile);
    this.#procs.push(proc);
    return proc;
  }

  /** Remember job children (pids from the run log) so their groups are killed at the end. */
  addJobPids(pids: Iterable<number>): void {
    for (const pid of pids) this.#jobPids.add(pid);
  }

  /** SIGKILL every tracked process still alive, then the process groups of job children. */
  async killAll(): Promise<void> {
    await Promise.all(this.#procs.map((p) => p.kill('SIGKILL')));
    for (const pid of this.#jobPids) {
      // Only a process of this scenario: its working directory (the job directory) lies in our
      // directory. A pid reused by an unrelated process is left alone.
      let cwd: string;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        continue;
      }
      if (!cwd.startsWith(`${this.dir}/`)) continue;
      const pgrp = processGroupOf(pid);
      if (pgrp === null) continue;
      try {
        // The job child runs in its own group (the agent's executor makes it so); never our own.
        if (pgrp !== process.pid && pgrp !== processGroupOf(process.pid)) process.kill(-pgrp, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}
