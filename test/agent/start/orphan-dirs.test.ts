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
