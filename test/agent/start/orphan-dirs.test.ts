/**
 * Job directories no journal entry owns (issue 9, item 7): an agent killed between closing a job's
 * journal entry and removing its directory leaks the directory, outputs included; the next start
 * removes it, and leaves alone what is not a job directory. Job directories are per server
 * (`<work>/server-<hex>/<pk>/`): another server's job of the same pk never takes over a kept one, and
 * a directory `<work>/<pk>/` of a version before them is still its entry's.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobDirPaths, legacyJobDirRoot } from '../../../src/agent/child/job-dir.js';
import { openJournal } from '../../../src/agent/journal/open.js';
import { removeOrphanJobDirs } from '../../../src/agent/start/orphan-dirs.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, downloadOutput, ended, fastAgentOptions, importTemplate, shellTemplate, spawnAgent, testLogger, until, waitForJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(buildOnce, 180_000);

describe('a job directory left by a crash after the job was done', () => {
  it('is removed at the next start; other entries of the work directory stay', { timeout: 120_000 }, async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, shellTemplate('leaves-output', 'echo secret > "$UFDL_OUTPUT_DIR/result.txt"'));
    const dir = await tempDir('ufdl-orphan-');
    const options = fastAgentOptions(server, dir);
    const pk = await createJob(server, template);

    const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'done:after-write' });
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.output()).toContain('fail point done:after-write');
    expect((await waitForJob(server, pk, ended)).error_reason).toBeNull();
    const jobDir = jobDirPaths(options.workDir!, server.url, pk).root;
    expect(existsSync(join(jobDir, 'output', 'result.txt'))).toBe(true);
    await mkdir(join(options.workDir!, 'cache'));
    await writeFile(join(options.workDir!, 'notes.txt'), 'keep me');

    const second = spawnAgent(options);
    await second.waitForLog((l) => l.msg === 'test agent running', 30_000);
    expect(existsSync(jobDir)).toBe(false);
    // Its server's directory, left empty, with it.
    expect(existsSync(dirname(jobDir))).toBe(false);
    expect(existsSync(join(options.workDir!, 'cache'))).toBe(true);
    expect(existsSync(join(options.workDir!, 'notes.txt'))).toBe(true);
    expect(second.lines().some((l) => l.msg === 'removed job directories that no unfinished journal entry owns')).toBe(true);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});

describe("a job directory of another server's unfinished job in the same journal", () => {
  it('is kept when the agent starts for another server (server.url changed), and its job is recovered when it comes back', { timeout: 120_000 }, async () => {
    const first = await startTestServer();
    const other = await startTestServer();
    const dir = await tempDir('ufdl-orphan-elsewhere-');
    const gate = join(dir, 'gate');
    const template = await importTemplate(first, shellTemplate('waits', `while [ ! -f '${gate}' ]; do sleep 0.1; done\necho kept > "$UFDL_OUTPUT_DIR/result.txt"\n`));
    const pk = await createJob(first, template);
    const options = fastAgentOptions(first, dir);
    const jobDir = jobDirPaths(options.workDir!, first.url, pk).root;

    // Killed while the job runs: its entry is unfinished, its child and directory live on.
    const killed = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'running:after-write' });
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(existsSync(jobDir)).toBe(true);

    // The same journal and work directory, now for another server.
    const elsewhere = spawnAgent({ ...options, serverUrl: other.url });
    await elsewhere.waitForLog((l) => l.msg === 'test agent running', 30_000);
    elsewhere.kill('SIGTERM');
    expect((await elsewhere.exited).code).toBe(0);
    expect(existsSync(jobDir)).toBe(true);

    // Back to the first server: the job is recovered, with its output.
    await writeFile(gate, '');
    const back = spawnAgent(options);
    const job = await waitForJob(first, pk, ended, 30_000);
    expect(job.error_reason, back.output().slice(-3000)).toBeNull();
    expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
    back.kill('SIGTERM');
    expect((await back.exited).code).toBe(0);
  });
});

describe("another server's job with the pk of a kept directory", () => {
  it("runs in a directory of its own: the kept one, outputs and all, is the first server's job's when the agent comes back", { timeout: 120_000 }, async () => {
    const first = await startTestServer();
    const other = await startTestServer();
    const dir = await tempDir('ufdl-same-pk-');
    const gate = join(dir, 'gate');
    // The first server's job writes its output at once, then waits: killed meanwhile, the agent leaves it owed.
    const waits = await importTemplate(first, shellTemplate('writes-then-waits', `echo first > "$UFDL_OUTPUT_DIR/result.txt"\nwhile [ ! -f '${gate}' ]; do sleep 0.1; done\n`));
    const pk = await createJob(first, waits);
    const options = fastAgentOptions(first, dir);
    const kept = jobDirPaths(options.workDir!, first.url, pk).root;

    const killed = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'running:after-write' });
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await waitForFile(join(kept, 'output', 'result.txt'));

    // The other server has a job of the same pk: the agent, now working for it, runs it to its end.
    const quick = await importTemplate(other, shellTemplate('quick', 'echo other > "$UFDL_OUTPUT_DIR/result.txt"'));
    expect(await createJob(other, quick)).toBe(pk);
    const elsewhere = spawnAgent({ ...options, serverUrl: other.url });
    const otherJob = await waitForJob(other, pk, ended, 30_000);
    expect(otherJob.error_reason, elsewhere.output().slice(-3000)).toBeNull();
    expect((await downloadOutput(other, pk, 'result.txt')).toString()).toBe('other\n');
    elsewhere.kill('SIGTERM');
    expect((await elsewhere.exited).code).toBe(0);
    expect(await readFile(join(kept, 'output', 'result.txt'), 'utf8')).toBe('first\n');

    // Back to the first server: its job is recovered with its own output, then its directory removed.
    await writeFile(gate, '');
    const back = spawnAgent(options);
    const job = await waitForJob(first, pk, ended, 30_000);
    expect(job.error_reason, back.output().slice(-3000)).toBeNull();
    expect((await downloadOutput(first, pk, 'result.txt')).toString()).toBe('first\n');
    back.kill('SIGTERM');
    expect((await back.exited).code).toBe(0);
    expect(existsSync(kept)).toBe(false);
  });
});

describe('a job directory of an entry journalled before the per-server directories (`<work>/<pk>/`)', () => {
  it('is found by recovery after the upgrade: its outputs are uploaded and the directory removed', { timeout: 120_000 }, async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, shellTemplate('leaves-output', 'echo before-upgrade > "$UFDL_OUTPUT_DIR/result.txt"'));
    const dir = await tempDir('ufdl-legacy-dir-');
    const options = fastAgentOptions(server, dir);
    const pk = await createJob(server, template);

    // Killed once the child's exit status is journalled: the outputs are owed.
    const killed = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'child-exit:after-write' });
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // What the earlier version left: the directory named by pk alone, and the journal saying so.
    const made = jobDirPaths(options.workDir!, server.url, pk).root;
    const legacy = legacyJobDirRoot(options.workDir!, pk);
    await rename(made, legacy);
    await rmdir(dirname(made));
    const db = new Database(options.journalFile!);
    db.prepare('UPDATE jobs SET job_dir = ? WHERE job_pk = ?').run(legacy, pk);
    db.close();

    const upgraded = spawnAgent(options);
    const job = await waitForJob(server, pk, ended, 30_000);
    expect(job.error_reason, upgraded.output().slice(-3000)).toBeNull();
    expect((await downloadOutput(server, pk, 'result.txt')).toString()).toBe('before-upgrade\n');
    upgraded.kill('SIGTERM');
    expect((await upgraded.exited).code).toBe(0);
    expect(existsSync(legacy)).toBe(false);
    expect(await readdir(options.workDir!)).toEqual([]);
  });
});

describe('the start-up sweep', () => {
  it('keeps the directory of every unfinished entry of every server, in either layout, and removes the rest', async () => {
    const dir = await tempDir('ufdl-sweep-');
    const work = join(dir, 'work');
    const path = join(dir, 'journal.sqlite3');
    const A = 'http://server-a.test';
    const B = 'http://server-b.test';
    const entry = (journal: ReturnType<typeof openJournal>, jobPk: number, jobDir: string, done = false) => {
      journal.beginAcquire({ jobPk, nodePk: 1, jobDir });
      if (done) journal.transition(jobPk, 'done');
    };
    // Server A: job 7 journalled by an earlier version (`<work>/7`), job 8 done; server B: its own job 7.
    const a = openJournal({ path, serverUrl: A });
    entry(a, 7, legacyJobDirRoot(work, 7));
    entry(a, 8, jobDirPaths(work, A, 8).root, true);
    a.close();
    const b = openJournal({ path, serverUrl: B });
    entry(b, 7, jobDirPaths(work, B, 7).root);
    const unfinished = b.unfinishedOfEveryServer();
    b.close();

    const dirs = {
      aLegacy7: legacyJobDirRoot(work, 7),
      aLegacy9: legacyJobDirRoot(work, 9), // an earlier version's, its entry closed
      a7: jobDirPaths(work, A, 7).root, // no entry of A owns it here: A's job 7 is in `<work>/7`
      a8: jobDirPaths(work, A, 8).root,
      b7: jobDirPaths(work, B, 7).root,
    };
    for (const root of Object.values(dirs)) await mkdir(join(root, 'output'), { recursive: true });
    await mkdir(join(work, 'cache'));
    await writeFile(join(dirname(dirs.b7), 'notes.txt'), 'keep me');

    const removed = await removeOrphanJobDirs(work, unfinished, testLogger());
    expect(removed.jobDirs.sort()).toEqual([dirs.aLegacy9, dirs.a7, dirs.a8].sort());
    expect(existsSync(dirs.aLegacy7)).toBe(true);
    expect(existsSync(dirs.b7)).toBe(true);
    expect(existsSync(join(work, 'cache'))).toBe(true);
    expect(existsSync(join(dirname(dirs.b7), 'notes.txt'))).toBe(true);
  });

  it('removes a per-server directory left empty, and no other: none an unfinished entry is in, none not named server-<12 hex>', async () => {
    const dir = await tempDir('ufdl-sweep-servers-');
    const work = join(dir, 'work');
    const path = join(dir, 'journal.sqlite3');
    const server = (name: string) => `http://${name}.test`;
    const serverDir = (name: string) => dirname(jobDirPaths(work, server(name), 1).root);
    // Server `running` has an unfinished job with its directory; server `acquiring` one whose directory
    // is not made yet (its entry is journalled first); server `finished` only a closed one.
    const journal = openJournal({ path, serverUrl: server('running') });
    journal.beginAcquire({ jobPk: 5, nodePk: 1, jobDir: jobDirPaths(work, server('running'), 5).root });
    journal.close();
    const acquiring = openJournal({ path, serverUrl: server('acquiring') });
    acquiring.beginAcquire({ jobPk: 3, nodePk: 1, jobDir: jobDirPaths(work, server('acquiring'), 3).root });
    const unfinished = acquiring.unfinishedOfEveryServer();
    acquiring.close();

    await mkdir(join(jobDirPaths(work, server('running'), 5).root, 'output'), { recursive: true });
    await mkdir(join(jobDirPaths(work, server('finished'), 8).root, 'output'), { recursive: true });
    await mkdir(serverDir('acquiring'), { recursive: true });
    await mkdir(serverDir('empty'), { recursive: true });
    await mkdir(serverDir('notes'), { recursive: true });
    await writeFile(join(serverDir('notes'), 'notes.txt'), 'keep me');
    await mkdir(join(serverDir('cache'), 'cache'), { recursive: true });
    // Empty, but not named as the agent names a per-server directory.
    const lookalikes = ['server-0123456789AB', 'server-0123456789a', 'server-0123456789abc', 'xserver-0123456789ab', 'server-0123456789ab.old'].map((name) => join(work, name));
    for (const lookalike of lookalikes) await mkdir(lookalike);
    // Named as one, but a link to a directory elsewhere: neither is touched.
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(work, 'server-0123456789ab'));

    const removed = await removeOrphanJobDirs(work, unfinished, testLogger());
    expect(removed.jobDirs).toEqual([jobDirPaths(work, server('finished'), 8).root]);
    expect(removed.serverDirs.sort()).toEqual([serverDir('finished'), serverDir('empty')].sort());
    expect(existsSync(serverDir('finished'))).toBe(false);
    expect(existsSync(serverDir('empty'))).toBe(false);
    expect(existsSync(join(jobDirPaths(work, server('running'), 5).root, 'output'))).toBe(true);
    expect(existsSync(serverDir('acquiring'))).toBe(true);
    expect(existsSync(join(serverDir('notes'), 'notes.txt'))).toBe(true);
    expect(existsSync(join(serverDir('cache'), 'cache'))).toBe(true);
    for (const lookalike of lookalikes) expect(existsSync(lookalike)).toBe(true);
    expect(existsSync(join(work, 'server-0123456789ab'))).toBe(true);
    expect(existsSync(elsewhere)).toBe(true);
  });
});

/** Wait until a test child has written `path` (the job runs on after its agent was killed). */
async function waitForFile(path: string): Promise<void> {
  await until(() => existsSync(path), 20_000, `${path} to exist`);
}
