/**
 * What a new user does after `npm ci && npm start`: standalone runs as a child process from the
 * built package, prints a submit command, that exact command runs a job to the end, its output
 * downloads, Ctrl-C stops everything cleanly, and a restart continues on the same data.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { REPO } from '../helpers/agent.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

const exec = promisify(execFile);

beforeAll(buildOnce, 180_000);

interface Standalone {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

async function startStandalone(cwd: string, port: number | undefined, statusPort: number | undefined, env: NodeJS.ProcessEnv = {}): Promise<Standalone> {
  const child = spawn(process.execPath, [join(REPO, 'dist/cli/main.js'), 'standalone', ...(port === undefined ? [] : ['--port', String(port)])], {
    cwd,
    env: {
      ...process.env,
      UFDL_AGENT_STATUS_PORT: statusPort === undefined ? undefined : String(statusPort),
      UFDL_AGENT_MIN_FREE_DISK: '0',
      UFDL_AGENT_LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const deadline = Date.now() + 150_000;
  while (!err.includes('submit a job')) {
    if (child.exitCode !== null) throw new Error(`standalone exited ${child.exitCode}:\n${err}\n${out}`);
    if (Date.now() > deadline) throw new Error(`standalone printed no welcome:\n${err}\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, stderr: () => err, stdout: () => out, exited };
}

// Two standalone starts, a job, a workflow and the CLI: minutes on a loaded 2-core machine.
describe('standalone (npm start)', { timeout: 300_000 }, () => {
  it('runs the printed submit command to the end, downloads its output, stops cleanly and continues after a restart', async () => {
    const cwd = await tempDir('ufdl-standalone-');
    const port = await freePort();
    const statusPort = await freePort();
    const first = await startStandalone(cwd, port, statusPort);

    // The welcome names the server and the password file it created.
    expect(first.stderr()).toContain(`http://127.0.0.1:${port}`);
    expect((await readFile(join(cwd, 'data/server/admin-password'), 'utf8')).trim().length).toBeGreaterThan(10);

    // Run exactly the command it printed, from the same directory.
    const command = /submit a job\s+(.+)$/m.exec(first.stderr())![1]!;
    const submitted = await exec('/bin/sh', ['-c', command], { cwd, timeout: 90_000 });
    expect(submitted.stdout).toMatch(/finish/);
    const pk = Number(/^(\d+)$/m.exec(submitted.stdout)?.[1] ?? /job (\d+)/.exec(submitted.stdout)?.[1]);
    expect(pk).toBeGreaterThan(0);

    const env = {
      ...process.env,
      UFDL_AGENT_SERVER_URL: `http://127.0.0.1:${port}`,
      UFDL_AGENT_SERVER_PASSWORD_FILE: join(cwd, 'data/server/admin-password'),
    };
    const cli = (args: string[]) => exec(process.execPath, [join(REPO, 'dist/cli/main.js'), ...args], { cwd, env, timeout: 30_000 });
    await cli(['download', String(pk), 'greeting.txt', '-o', join(cwd, 'greeting.txt')]);
    expect(await readFile(join(cwd, 'greeting.txt'), 'utf8')).toBe('Hello, world!\n');

    // The workflow it prints, train-then-predict, runs to the end: exit status 0.
    const workflowCommand = /a workflow\s+(.+)$/m.exec(first.stderr())![1]!;
    expect(workflowCommand).toMatch(/submit train-then-predict --wait$/);
    const workflow = await exec('/bin/sh', ['-c', workflowCommand], { cwd, timeout: 90_000 });
    expect(workflow.stdout).toMatch(/a workflow of 2 nodes/);
    expect(workflow.stdout).toMatch(/predict \(job \d+\): finished/);
    expect(workflow.stdout.trimEnd().split('\n').at(-1)).toMatch(/^job \d+: finished$/);

    // Ctrl-C: the agent drains, the server stops, exit status 0.
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.stdout()).toMatch(/standalone stopped/);

    // Again on the same data: the job is still there and the templates are not imported twice.
    const second = await startStandalone(cwd, port, statusPort);
    const jobs = JSON.parse((await cli(['jobs', '--json'])).stdout) as Array<{ pk: number; state: string }>;
    expect(jobs.find((j) => j.pk === pk)?.state).toBe('finished');
    const templates = JSON.parse((await cli(['templates', 'list', '--json'])).stdout) as Array<{ name: string }>;
    const names = templates.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('shell-hello');
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });
});

describe('standalone with a differently named admin (serve.admin_user)', { timeout: 300_000 }, () => {
  it('names that user in the welcome, and the submit command it prints works as printed', async () => {
    const cwd = await tempDir('ufdl-standalone-');
    const run = await startStandalone(cwd, await freePort(), await freePort(), { UFDL_ADMIN_USER: 'root' });
    expect(run.stderr()).toMatch(/admin login\s+root \/ the password in data\/server\/admin-password/);
    const command = /submit a job\s+(.+)$/m.exec(run.stderr())![1]!;
    // Without the user's name the printed command logged in as 'admin', whom this server does not have.
    const submitted = await exec('/bin/sh', ['-c', command], { cwd, timeout: 90_000 });
    expect(submitted.stdout).toMatch(/finish/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });
});

describe('standalone with the admin password in the environment (serve.admin_password)', { timeout: 300_000 }, () => {
  it('prints a submit command that reads the password from the same variable, and works as printed', async () => {
    const cwd = await tempDir('ufdl-standalone-');
    const secret = 'a-configured-admin-password';
    const env = { UFDL_AGENT_SERVE_ADMIN_PASSWORD: secret };
    const run = await startStandalone(cwd, await freePort(), await freePort(), env);
    expect(run.stderr()).toMatch(/admin login\s+admin \/ the password in UFDL_AGENT_SERVE_ADMIN_PASSWORD/);
    expect(run.stderr()).not.toContain(secret);
    const command = /submit a job\s+(.+)$/m.exec(run.stderr())![1]!;
    // Before, the command carried no password at all and failed as printed (no password to log in with).
    const submitted = await exec('/bin/sh', ['-c', command], { cwd, timeout: 90_000, env: { ...process.env, ...env } });
    expect(submitted.stdout).toMatch(/finish/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });
});

/** Hold `port` on 127.0.0.1 (as another server would) until the test ends; false if it is taken already. */
async function occupy(port: number): Promise<boolean> {
  const server = createServer();
  const held = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (held) onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return held;
}

describe('a port in use', () => {
  it('serve: one line naming the port and how to choose another, status 78, nothing created', async () => {
    const cwd = await tempDir('ufdl-port-');
    const port = await freePort();
    expect(await occupy(port)).toBe(true);
    const result = await exec(process.execPath, [join(REPO, 'dist/cli/main.js'), 'serve', '--port', String(port), '--data', join(cwd, 'data')], { cwd, timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(78);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `ufdl-agent: cannot listen on 127.0.0.1:${port}: the port is in use (another UFDL server?) (port from --port); ` +
        'choose another with --port or UFDL_AGENT_SERVE_PORT (serve.port in a configuration file)',
    );
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('serve: an address that is not this machine\'s names serve.host and how to choose another, status 78, nothing created', async () => {
    const cwd = await tempDir('ufdl-port-');
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    const args = [join(REPO, 'dist/cli/main.js'), 'serve', '--host', '192.0.2.1', '--port', String(await freePort()), '--data', join(cwd, 'data')];
    const result = await exec(process.execPath, args, { cwd, timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(78);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^ufdl-agent: cannot listen on 192\.0\.2\.1:\d+: the address is not an address of this machine \(host from --host\); choose another with --host or UFDL_AGENT_SERVE_HOST/,
    );
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('standalone: takes the next free ports when the default ones are taken (another standalone), and prints them', async () => {
    const cwd = await tempDir('ufdl-port-');
    // The server's and the agent's default ports, taken by us or by someone else already: either
    // way standalone must not stop on them.
    await occupy(8000);
    await occupy(8001);
    const started = await startStandalone(cwd, undefined, undefined);
    const url = /UFDL server\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(started.stderr());
    expect(Number(url?.[2])).toBeGreaterThan(8001);
    expect((await fetch(`${url![1]}/livez`)).status).toBe(200);
    expect(started.stdout()).toContain('port 8000 is in use; using ');
    expect(started.stdout()).toContain("status port 8001 is in use; the agent's status endpoint uses ");
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
  });
});
