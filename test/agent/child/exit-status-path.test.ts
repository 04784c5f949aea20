/**
 * The exit status goes into the file the agent made before the command started, handed to the
 * wrapper open: what the job does to that path meanwhile is never written through. A Docker job's
 * container has its job directory mounted and is not trusted; a symbolic link it leaves at
 * `exit-status.tmp` must not make the agent's side write over a file of the host (its journal).
 */
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { readExitStatus } from '../../../src/agent/child/wrapper.js';
import { reapOnFinish, shellSpec, tempJobDir } from './helpers.js';

describe('the exit-status file', () => {
  it('is not written through a symbolic link the job put at its path', async () => {
    const dir = await tempJobDir(41);
    const victim = join(dir.root, '..', 'journal.sqlite3');
    await writeFile(victim, 'SQLite format 3\0 the agent journal');
    const tmp = `${dir.exitStatusPath}.tmp`;
    const child = await spawnJob(shellSpec(dir, `rm -f '${tmp}' && ln -s '${victim}' '${tmp}' && exit 5`));
    reapOnFinish(child);

    expect(await child.exited).toMatchObject({ code: 5, signal: null });
    expect(await readFile(victim, 'utf8')).toBe('SQLite format 3\0 the agent journal');
  });

  it('is still recorded when the job removed the reserved file', async () => {
    const dir = await tempJobDir(42);
    const child = await spawnJob(shellSpec(dir, `rm -f '${dir.exitStatusPath}.tmp' && exit 6`));
    reapOnFinish(child);

    expect(await child.exited).toEqual({ code: 6, signal: null, source: 'wrapper' });
    expect(await readExitStatus(dir)).toEqual({ code: 6, signal: null, source: 'wrapper' });
  });

  it('is not a descriptor the command inherits, and a symbolic link left there before is replaced', async () => {
    const dir = await tempJobDir(43);
    const victim = join(dir.root, '..', 'other-file');
    await writeFile(victim, 'keep me');
    await rm(`${dir.exitStatusPath}.tmp`, { force: true });
    await symlink(victim, `${dir.exitStatusPath}.tmp`);
    const fds = join(dir.root, 'fds.txt');
    const child = await spawnJob(shellSpec(dir, `ls -l /proc/$$/fd > '${fds}'`));
    reapOnFinish(child);

    expect(await child.exited).toEqual({ code: 0, signal: null, source: 'wrapper' });
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    // The job's shell has its output and whatever the agent's own parent left open, not the status file.
    const open = await readFile(fds, 'utf8');
    expect(open).toContain(dir.consolePath);
    expect(open).not.toContain('exit-status');
    expect(await readdir(dir.root)).not.toContain('exit-status.tmp');
  });
});

describe('the exit-status file, forged', () => {
  it('is replaced by the real status when the job put a file of its own at the reserved path', async () => {
    const dir = await tempJobDir(44);
    const tmp = `${dir.exitStatusPath}.tmp`;
    // A container that claims success before it is killed: its own file where the reservation was.
    const child = await spawnJob(shellSpec(dir, `rm -f '${tmp}' && printf '{"status":  0}\\n' > '${tmp}' && exit 9`));
    reapOnFinish(child);

    expect(await child.exited).toEqual({ code: 9, signal: null, source: 'wrapper' });
    expect(await readExitStatus(dir)).toEqual({ code: 9, signal: null, source: 'wrapper' });
  });
});

describe('the exit-status reservation', () => {
  it('never keeps a child from starting: a directory in its place means none, and the status is still recorded', async () => {
    const dir = await tempJobDir(45);
    await mkdir(`${dir.exitStatusPath}.tmp`);
    const child = await spawnJob(shellSpec(dir, 'exit 2'));
    reapOnFinish(child);

    expect(await child.exited).toEqual({ code: 2, signal: null, source: 'wrapper' });
  });
});
