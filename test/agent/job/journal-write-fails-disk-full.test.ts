/**
 * A journal write that fails because a job filled the disk, on a disk that is really full: the agent
 * must not exit for its restart (74) while the disk is still full — a write to the journal commits
 * there all the same (WAL), and a restart onto the full disk failed again until systemd gave up. It
 * waits, saying how much room it waits for, and exits 74 once the job's filler is removed; the restart
 * reports the job. The disk is a small tmpfs (mounting needs root, as in CI; skipped elsewhere, saying
 * so); the journal write fails by the `child-exit:write-full` fail point, as in journal-write-fails.test.ts.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MIN_FREE_BYTES } from '../../../src/agent/health/free-space.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, downloadOutput, fastAgentOptions, importTemplate, shellTemplate, restartUntil, spawnAgent } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { mountTmpfs, whyNoTmpfs } from '../../helpers/tmpfs.js';

const NO_TMPFS = whyNoTmpfs();
if (NO_TMPFS !== null) console.warn(`journal-write-fails-disk-full.test.ts: skipped: ${NO_TMPFS}`);

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe.skipIf(NO_TMPFS !== null)(`a journal write that fails on a really full disk${NO_TMPFS === null ? '' : ` (skipped: ${NO_TMPFS})`}`, () => {
  it('waits for room before exiting 74, and the restart reports the job', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-journal-disk-full-');
    const disk = mountTmpfs(dir, 'disk', 32 * 1024 * 1024);
    const filler = join(disk, 'filler');
    const template = await importTemplate(
      server,
      // The job fills the disk to the last byte, as a runaway job does: its exit status must still be
      // recorded (into room reserved before it started), or the restart would run it again.
      shellTemplate('disk-full', `echo weights > "$UFDL_OUTPUT_DIR/model.bin"\ncat /dev/zero > '${filler}' 2>/dev/null\nexit 0\n`),
    );
    const pk = await createJob(server, template);
    const options = fastAgentOptions(server, disk);

    const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'child-exit:write-full' });
    await first.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('NOT READY: the journal could not be written'), 30_000);
    const waiting = await first.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('file system has'), 30_000);
    expect(waiting.msg).toMatch(new RegExp(`^the journal file system has \\d+ bytes free, waiting for at least ${MIN_FREE_BYTES}$`));

    rmSync(filler);
    const exit = await Promise.race([first.exited, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
    expect(exit, first.output().slice(-4000)).toEqual({ code: 74, signal: null });

    const { job, agent: second } = await restartUntil(server, pk, options);
    expect(job.error_reason, second.output().slice(-3000)).toBeNull();
    expect((await downloadOutput(server, pk, 'model.bin')).toString()).toBe('weights\n');
  });
});
