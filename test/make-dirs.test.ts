/**
 * The directories an operator names (data, work, journal, cache) are made one level at a time, and a
 * path that cannot be made fails at once, saying where and why. Node 20's own recursive `mkdir` spins
 * for ever at full CPU when a `mkdir` under an existing parent answers ENOENT, as /proc does: these
 * tests would time out on it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryCreationError, makeDirs, makeDirsSync } from '../src/make-dirs.js';
import { tempDir } from './helpers/temp-dir.js';
import { mountTmpfs, whyNoTmpfs } from './helpers/tmpfs.js';

const both = [
  ['makeDirs', makeDirs],
  ['makeDirsSync', async (path: string, mode?: number) => makeDirsSync(path, mode)],
] as const;

describe.each(both)('%s', (_name, make) => {
  it('makes the directory and its missing parents, with the mode, and accepts one that exists', async () => {
    const root = await tempDir('ufdl-make-dirs-');
    const deep = join(root, 'a', 'b', 'c');
    await make(deep, 0o750);
    for (const dir of [join(root, 'a'), join(root, 'a', 'b'), deep]) {
      expect(statSync(dir).isDirectory()).toBe(true);
      expect(statSync(dir).mode & 0o777).toBe(0o750 & ~process.umask());
    }
    await make(deep, 0o750);
    await make(root);
  });

  it('refuses a path the file system does not allow (/proc), at once, saying so', async () => {
    const error = await Promise.resolve(make('/proc/ufdl-no-such/dir')).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DirectoryCreationError);
    expect((error as DirectoryCreationError).code).toBe('ENOENT');
    expect((error as Error).message).toBe(
      'cannot create the directory /proc/ufdl-no-such/dir (at /proc/ufdl-no-such): this file system does not allow a directory there (e.g. /proc or /sys)',
    );
  });

  it('names the file in the way, whether it is the directory itself or one of its parents', async () => {
    const root = await tempDir('ufdl-make-dirs-');
    const file = join(root, 'data');
    writeFileSync(file, 'not a directory');
    await expect(Promise.resolve(make(file))).rejects.toThrow(`cannot create the directory ${file}: a file, not a directory, is in the way`);
    await expect(Promise.resolve(make(join(file, 'x', 'y')))).rejects.toThrow(
      `cannot create the directory ${join(file, 'x', 'y')} (at ${file}): a part of the path is a file, not a directory`,
    );
  });

  it('names a symbolic link whose target does not exist (a file system not mounted yet)', async () => {
    const root = await tempDir('ufdl-make-dirs-');
    const link = join(root, 'work');
    symlinkSync(join(root, 'mnt', 'work'), link);
    await expect(Promise.resolve(make(join(link, 'jobs')))).rejects.toThrow(
      `cannot create the directory ${join(link, 'jobs')} (at ${link}): it is a symbolic link to ${join(root, 'mnt', 'work')}, which does not exist (a file system not mounted yet?)`,
    );
  });

  it('refuses a parent it may not write, naming why', async () => {
    const root = await tempDir('ufdl-make-dirs-');
    if (process.getuid?.() !== 0) {
      const locked = join(root, 'locked');
      mkdirSync(locked, { mode: 0o500 });
      await expect(Promise.resolve(make(join(locked, 'work')))).rejects.toThrow(`cannot create the directory ${join(locked, 'work')}: permission denied`);
      return;
    }
    // Root writes anywhere a mode forbids; a read-only mount refuses root too.
    const noMount = whyNoTmpfs();
    if (noMount !== null) return void console.warn(`make-dirs.test.ts: the read-only case skipped: ${noMount}`);
    const readOnly = mountTmpfs(root, 'ro', 1024 * 1024);
    execFileSync('mount', ['-o', 'remount,ro', readOnly]);
    await expect(Promise.resolve(make(join(readOnly, 'work', 'jobs')))).rejects.toThrow(
      `cannot create the directory ${join(readOnly, 'work', 'jobs')} (at ${join(readOnly, 'work')}): the file system is read-only`,
    );
  });

  it('succeeds when another process makes the same directory at the same moment', async () => {
    const root = await tempDir('ufdl-make-dirs-');
    const deep = join(root, 'x', 'y', 'z');
    await Promise.all([make(deep), make(deep), makeDirs(deep), makeDirs(join(deep, 'w'))]);
    expect(statSync(join(deep, 'w')).isDirectory()).toBe(true);
  });
});
