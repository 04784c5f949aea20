/**
 * A power cut after a job's exit status reached the disk must not find its outputs still in the page
 * cache: recovery would upload truncated files as a success. The wrapper flushes the job directory's
 * file system before it writes the status. No power cut is faked here: `strace` watches the real
 * wrapper run a real job and shows the order of its system calls.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WRAPPER_NAME, WRAPPER_SCRIPT } from '../../../src/agent/child/wrapper.js';
import { WRAPPER_SHELL } from '../../../src/agent/child/spawn.js';
import { tempJobDir } from './helpers.js';

const hasStrace = spawnSync('strace', ['-V']).status === 0;

describe.skipIf(!hasStrace)('the wrapper, traced', () => {
  it('flushes the job directory to disk after the command and before it writes the exit status', async () => {
    const dir = await tempJobDir(23);
    const trace = join(dir.root, '..', 'trace.txt');
    const job = `head -c 65536 /dev/urandom > "${dir.outputDir}/model.bin"; echo trained`;
    // -y: file descriptors shown with their paths, so the flush can be tied to the job directory.
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-y', '-o', trace, '-e', 'trace=syncfs,sync,fsync,fdatasync,rename,renameat,renameat2,execve',
        WRAPPER_SHELL, '-c', WRAPPER_SCRIPT, WRAPPER_NAME, dir.exitStatusPath, '', '', '', '', '', '/bin/sh', '-c', job],
      { encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(await readFile(dir.exitStatusPath, 'utf8')).toBe('{"status":  0}\n');

    const lines = (await readFile(trace, 'utf8')).split('\n');
    const jobRan = lines.findIndex((l) => l.includes('execve("/usr/bin/head"') || l.includes('execve("/bin/head"'));
    const flushed = lines.findIndex((l) => (/syncfs\(\d+<([^>]*)>\) = 0/.exec(l)?.[1] ?? '').startsWith(dir.root) || /\bsync\(\) = 0/.test(l));
    const statusWritten = lines.findIndex((l) => /rename/.test(l) && l.includes(`"${dir.exitStatusPath}"`) && / = 0$/.test(l));
    const context = lines.filter((l) => /syncfs|sync\(|rename|execve/.test(l)).join('\n');
    expect(jobRan, context).toBeGreaterThanOrEqual(0);
    expect(statusWritten, context).toBeGreaterThan(jobRan);
    expect(flushed, context).toBeGreaterThan(jobRan);
    expect(flushed, context).toBeLessThan(statusWritten);
  });
});
