/**
 * Job directories no journal entry owns (issue 9, item 7): an agent killed between closing a job's
 * journal entry and removing its directory leaks the directory, outputs included; the next start
 * removes it, and leaves alone what is not a job directory.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, shellTemplate, spawnAgent, waitForJob } from '../../helpers/agent.js';
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
    const jobDir = join(options.workDir!, String(pk));
    expect(existsSync(join(jobDir, 'output', 'result.txt'))).toBe(true);
    await mkdir(join(options.workDir!, 'cache'));
    await writeFile(join(options.workDir!, 'notes.txt'), 'keep me');

    const second = spawnAgent(options);
    await second.waitForLog((l) => l.msg === 'test agent running', 30_000);
    expect(existsSync(jobDir)).toBe(false);
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
    const jobDir = join(options.workDir!, String(pk));

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
