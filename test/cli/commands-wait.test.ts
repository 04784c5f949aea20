/**
 * `submit --wait` and `watch`, run as the built CLI against a real embedded server while the test
 * drives the job through the API as a node would: exit 0 for a finished job, 1 for an errored or
 * cancelled one, live lines on stdout (plain lines: stdout is a pipe here). Also `status` against a
 * status endpoint, a journal, and neither.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildOnce } from '../helpers/build.js';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { freePort, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';
import { TestNode, cli, expectOneLineError, jobPks, serverEnv, serverWithTemplates, startCli } from './commands-support.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 240_000);

/** Wait until the CLI has created its job, and return its pk. */
async function createdJob(server: TestServer): Promise<number> {
  return eventually(async () => (await jobPks(server))[0]);
}

describe('submit --wait', () => {
  it('follows the job and exits 0 when it finishes', async () => {
    const server = await serverWithTemplates();
    const waiting = cli(['submit', 'train-epochs', '--param', 'epochs=2', '--wait'], { env: serverEnv(server), timeoutMs: 60_000 });
    const pk = await createdJob(server);
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    await node.progress(pk, '0.5', { epoch: 1 });
    await node.upload(pk, 'model.bin', 'BLOB', 'weights');
    await node.finish(pk);

    const result = await waiting;
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(String(pk));
    expect(lines.at(-1)).toMatch(new RegExp(`^job ${pk}: (finish|finished)`));
    expect(result.stderr).toBe('');
  });

  it('exits 1 and prints the error reason when the job ends in error', async () => {
    const server = await serverWithTemplates();
    const waiting = cli(['submit', 'shell-hello', '--wait'], { env: serverEnv(server), timeoutMs: 60_000 });
    const pk = await createdJob(server);
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    await node.finish(pk, 'exit status 3: boom');

    const result = await waiting;
    expectOneLineError(result, 1, new RegExp(`^ufdl-agent: job ${pk} errored: exit status 3: boom$`));
    expect(result.stdout.split('\n')[0]).toBe(String(pk));
  });

  it('with --json prints the ended job on stdout and the live lines on stderr', async () => {
    const server = await serverWithTemplates();
    const waiting = cli(['submit', 'shell-hello', '--param', 'name=json', '--wait', '--json'], { env: serverEnv(server), timeoutMs: 60_000 });
    const pk = await createdJob(server);
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    await node.finish(pk);
    const result = await waiting;
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pk, state: 'finished' });
    expect(result.stderr).toContain(`job ${pk}:`);
  });
});

describe('watch', () => {
  it('shows transitions and progress until the job ends', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const pk = Number((await cli(['submit', 'train-epochs'], { env })).stdout.trim());
    const watching = startCli(['watch', String(pk)], { env, timeoutMs: 60_000 });
    const node = await TestNode.create(server);
    // Drive the job once the watcher's socket is open.
    await watching.stdoutMatches(/watching \(live updates\)/);
    await node.acquireAndStart(pk);
    for (const value of ['0.25', '0.5', '0.75']) {
      await node.progress(pk, value);
      await new Promise((r) => setTimeout(r, 200));
    }
    await node.finish(pk);
    const result = await watching.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^job ${pk} \\(train-epochs@1\\): created\\n`));
    expect(result.stdout).toMatch(new RegExp(`job ${pk}: running 75%`));
    expect(result.stdout).toMatch(new RegExp(`job ${pk}: finish`));
  });

  it('exits 1 when the job is cancelled', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const pk = Number((await cli(['submit', 'train-epochs'], { env })).stdout.trim());
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    const watching = startCli(['watch', String(pk)], { env, timeoutMs: 60_000 });
    await watching.stdoutMatches(/watching \(live updates\)/);
    const cancelled = await cli(['cancel', String(pk)], { env });
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const result = await watching.result;
    expectOneLineError(result, 1, new RegExp(`^ufdl-agent: job ${pk} was cancelled$`));
    expect(result.stdout).toMatch(new RegExp(`job ${pk}: cancel`));
  });

  it('exits at once for a job that has already finished, and 1 for an unknown job', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const pk = Number((await cli(['submit', 'shell-hello'], { env })).stdout.trim());
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    await node.finish(pk);
    const result = await cli(['watch', String(pk)], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`job ${pk} (shell-hello@1): finished`);
    expectOneLineError(await cli(['watch', '9999'], { env }), 1, /^ufdl-agent: job 9999: Not found\.$/);
  });
});

describe('status', () => {
  it("prints the agent's snapshot from its status endpoint", async () => {
    const now = Date.now();
    const agent = {
      state: 'running',
      ready: true,
      notReady: [],
      pid: 4242,
      startedAt: new Date(now - 120_000).toISOString(),
      serverUrl: 'http://server.test:8000/',
      capabilities: null,
      lastServerContactAt: new Date(now - 3_000).toISOString(),
      serverSilentMs: 3_000,
      slots: [
        { index: 0, gpu: 0, nodeIndex: 0, nodePk: 5, jobPk: 7 },
        { index: 1, gpu: 1, nodeIndex: 1, nodePk: 6, jobPk: null },
      ],
      jobs: [{ jobPk: 7, slot: 0, phase: 'running', progress: 0.42, pid: 999, startedAt: now - 65_000 }],
      loop: { iterations: 3, lastPollAt: now, lastPollError: null, watchdogRestarts: 0, skipped: [] },
      fence: null,
      journal: { path: '/var/lib/ufdl-agent/journal.sqlite3', unfinished: 1 },
    };
    let snapshot: unknown = agent;
    const endpoint = createServer((req, res) => {
      res.writeHead(req.url === '/status.json' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/status.json' ? snapshot : { detail: 'Not found.' }));
    });
    await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => endpoint.close(() => r())));
    const url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;

    const text = await cli(['status', '--status-url', url]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`agent status from ${url}/status.json`);
    expect(text.stdout).toMatch(/^agent: pid 4242, running, ready, up 2m$/m);
    expect(text.stdout).toMatch(/^last contact with the server: \S+ \(3s ago\)$/m);
    expect(text.stdout).toMatch(/^slots: 2 \(1 busy\)$/m);
    expect(text.stdout).toMatch(/^\s*7\s+0\s+running\s+42%\s+999\s+1m$/m);
    expect(text.stdout).toMatch(/^journal: \/var\/lib\/ufdl-agent\/journal\.sqlite3 \(1 unfinished\)$/m);

    const json = await cli(['status', '--status-url', url, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ source: 'agent', url, status: agent });

    // Several server addresses: each, the one in use marked, how the others last failed.
    snapshot = {
      ...agent,
      serverUrl: 'http://b.test:8000',
      servers: {
        current: 'http://b.test:8000/',
        switches: 1,
        addresses: [
          { url: 'http://a.test:8000/', current: false, failures: 2, lastFailureAt: new Date(now - 60_000).toISOString(), lastFailure: 'network (ECONNREFUSED): connect ECONNREFUSED', lastOkAt: null },
          { url: 'http://b.test:8000/', current: true, failures: 0, lastFailureAt: null, lastFailure: null, lastOkAt: new Date(now).toISOString() },
        ],
      },
    };
    const several = await cli(['status', '--status-url', url]);
    expect(several.stdout).toMatch(/^server: http:\/\/b\.test:8000$/m);
    expect(several.stdout).toMatch(/^ {4}http:\/\/a\.test:8000\/, last failed 1m ago: network \(ECONNREFUSED\): connect ECONNREFUSED$/m);
    expect(several.stdout).toMatch(/^ {2}\* http:\/\/b\.test:8000\/$/m);
    expect(several.stdout).toMatch(/^ {2}switches: 1$/m);

    // A snapshot of another shape (another version of the agent) is still shown, generically.
    snapshot = { state: 'draining', workers: [{ id: 1, busy: true }] };
    const other = await cli(['status', '--status-url', url]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toMatch(/^state: draining$/m);
    expect(other.stdout).toMatch(/^\s+id\s+busy$/m);
  });

  it('says clearly when neither the endpoint nor the journal is there (69)', async () => {
    const dir = await tempDir('ufdl-cli-');
    const port = await freePort();
    const result = await cli(['status', '--status-url', `http://127.0.0.1:${port}`, '--journal', join(dir, 'journal.sqlite3')]);
    expectOneLineError(
      result,
      69,
      new RegExp(`^ufdl-agent: no agent status: the agent status endpoint http://127\\.0\\.0\\.1:${port}/status\\.json does not answer \\(ECONNREFUSED\\), and its journal cannot be read \\(There is no journal at .*journal\\.sqlite3\\.\\)`),
    );
  });

  it('falls back to the journal, read-only: what runs, unfinished entries, last contact', async () => {
    const dir = await tempDir('ufdl-cli-');
    const path = join(dir, 'journal.sqlite3');
    const { openJournal } = await import('../../src/agent/journal/index.js');
    const journal = openJournal({ path, serverUrl: 'http://server.test:8000' });
    journal.saveNode({ nodePk: 3, ip: '10.0.0.3', index: 0 });
    journal.noteContact(new Date(Date.now() - 5_000));
    journal.beginAcquire({ jobPk: 12, nodePk: 3, slot: 0 });
    for (const state of ['acquired', 'preparing', 'starting'] as const) journal.transition(12, state);
    journal.transition(12, 'running', { pid: process.pid });
    journal.beginAcquire({ jobPk: 13, nodePk: 3 });
    journal.close();

    const statusUrl = `http://127.0.0.1:${await freePort()}`;
    const result = await cli(['status', '--status-url', statusUrl, '--journal', path]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/does not answer \(ECONNREFUSED\); from the journal instead/);
    expect(result.stdout).toContain(`journal: ${path}`);
    expect(result.stdout).toMatch(/agent: not running/);
    expect(result.stdout).toMatch(/last contact with the server: \S+ \(\d+s ago\)/);
    expect(result.stdout).toMatch(/server http:\/\/server\.test:8000\S*: node 3/);
    expect(result.stdout).toMatch(/jobs: 2 in the journal, 2 unfinished/);
    expect(result.stdout).toMatch(/running now: job 12 \(slot 0\)/);
    expect(result.stdout).toMatch(/^\s*13\s+acquiring\s/m);

    const json = JSON.parse((await cli(['status', '--status-url', statusUrl, '--journal', path, '--json'])).stdout);
    expect(json).toMatchObject({ source: 'journal', journal: { path, jobs: { total: 2, unfinished: 2 } } });
    expect((json.unfinished as { jobPk: number; state: string }[]).map((j) => [j.jobPk, j.state])).toEqual([
      [12, 'running'],
      [13, 'acquiring'],
    ]);
  });
});
