/**
 * A job that fills its disk to the last byte must still have its exit status recorded: without it, an
 * agent restarted before it reported the job (a journal write that failed on that same full disk
 * restarts it) finds no status, counts the job as vanished and runs it again. The disk is a small,
 * really full tmpfs (mounting needs root, as in CI; skipped elsewhere, saying so).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJobDir, jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { readExitStatus } from '../../../src/agent/child/wrapper.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { mountTmpfs, whyNoTmpfs } from '../../helpers/tmpfs.js';
import { reapOnFinish, shellSpec } from './helpers.js';

const NO_TMPFS = whyNoTmpfs();
if (NO_TMPFS !== null) console.warn(`exit-status-disk-full.test.ts: skipped: ${NO_TMPFS}`);

describe.skipIf(NO_TMPFS !== null)(`the exit status on a full disk${NO_TMPFS === null ? '' : ` (skipped: ${NO_TMPFS})`}`, () => {
  it('is recorded by the wrapper even when the job left not one byte free', async () => {
    const parent = await tempDir('ufdl-exit-status-full-');
    const disk = mountTmpfs(parent, 'disk', 1024 * 1024);
    const dir = await createJobDir(jobDirPaths(disk, 'http://ufdl.test', 31));
    // Fill the disk until the kernel refuses (ENOSPC), then prove it is full: not even a new empty
    // file's first byte fits. Exit 3, a status the agent's own wait could not tell from the file's.
    const job = [
      `cat /dev/zero > "${dir.outputDir}/filler" 2>/dev/null`,
      `if printf x > "${dir.outputDir}/probe" 2>/dev/null; then echo NOT-FULL; fi`,
      'exit 3',
    ].join('\n');
    const child = await spawnJob(shellSpec(dir, job));
    reapOnFinish(child);

    const exit = await child.exited;
    expect(await readFile(dir.consolePath, 'utf8').catch(() => '')).not.toContain('NOT-FULL');
    // `source: 'wrapper'`: the status came from the file, as a restarted agent would read it.
    expect(exit).toEqual({ code: 3, signal: null, source: 'wrapper' });
    expect(await readExitStatus(dir)).toEqual({ code: 3, signal: null, source: 'wrapper' });
  });

  it('does not keep a child from starting on a disk already full (a container followed after a restart)', async () => {
    const parent = await tempDir('ufdl-exit-status-full-');
    const disk = mountTmpfs(parent, 'disk', 1024 * 1024);
    const dir = await createJobDir(jobDirPaths(disk, 'http://ufdl.test', 32));
    await writeFile(dir.consolePath, '');
    await writeFile(join(disk, 'filler'), Buffer.alloc(1024 * 1024)).catch(() => undefined);
    await expect(writeFile(join(disk, 'probe'), 'x')).rejects.toMatchObject({ code: 'ENOSPC' });

    const child = await spawnJob(shellSpec(dir, 'exit 4'));
    reapOnFinish(child);
    // No room for the status at all: the agent's own wait tells it.
    expect(await child.exited).toEqual({ code: 4, signal: null, source: 'wait' });
  });
});
