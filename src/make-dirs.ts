/**
 * Create a directory and its missing parents, one `mkdir` at a time, for the directories an operator
 * names (the server's data directory, the agent's work directory and journal's directory, the CLI's
 * cache). Not node's `mkdir(…, { recursive: true })`: on Node 20 it retries for ever, at full CPU,
 * when a `mkdir` under an existing parent answers ENOENT — as /proc, /sys and some FUSE file systems
 * do — so `serve --data /proc/x` hung without a word instead of saying it cannot create the directory.
 * Shared by the server, the agent and the CLI, which import nothing of each other.
 */
import { lstatSync, mkdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** A directory that cannot be created: the path, and the system's reason (`code`: ENOTDIR, EACCES, …). */
export class DirectoryCreationError extends Error {
  readonly path: string;
  readonly code: string | undefined;

  constructor(path: string, failedAt: string, cause: NodeJS.ErrnoException) {
    const reason = (cause.code === 'EEXIST' ? danglingLink(failedAt) : undefined) ?? REASONS[cause.code ?? ''] ?? cause.message;
    super(`cannot create the directory ${path}${failedAt === path ? '' : ` (at ${failedAt})`}: ${reason}`, { cause });
    this.name = 'DirectoryCreationError';
    this.path = path;
    this.code = cause.code;
  }
}

/** A symbolic link whose target does not exist (often on a file system not mounted yet): what to say. */
function danglingLink(path: string): string | undefined {
  try {
    if (lstatSync(path).isSymbolicLink()) return `it is a symbolic link to ${readlinkSync(path)}, which does not exist (a file system not mounted yet?)`;
  } catch {
    // Gone meanwhile: the generic reason will do.
  }
  return undefined;
}

const REASONS: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'a file, not a directory, is in the way',
  ENOENT: 'this file system does not allow a directory there (e.g. /proc or /sys)',
  EACCES: 'permission denied',
  EPERM: 'the operation is not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** Make `path` and its missing parents (each with `mode`, as `mkdir -p -m` would make the last). */
export async function makeDirs(path: string, mode?: number): Promise<void> {
  const target = resolve(path);
  for (const dir of await missingFromTop(target)) {
    try {
      await mkdir(dir, mode === undefined ? undefined : { mode });
    } catch (err) {
      if (!(await isDirectory(dir))) throw new DirectoryCreationError(target, dir, err as NodeJS.ErrnoException);
    }
  }
}

/** {@link makeDirs}, synchronously (start-up code that is synchronous already). */
export function makeDirsSync(path: string, mode?: number): void {
  const target = resolve(path);
  for (const dir of missingFromTopSync(target)) {
    try {
      mkdirSync(dir, mode === undefined ? undefined : { mode });
    } catch (err) {
      if (!isDirectorySync(dir)) throw new DirectoryCreationError(target, dir, err as NodeJS.ErrnoException);
    }
  }
}

/**
 * The directories from the nearest existing ancestor of `target` (excluded) down to `target`, in
 * the order to create them. An ancestor that exists but is not a directory fails as `mkdir` would.
 */
async function missingFromTop(target: string): Promise<string[]> {
  const missing: string[] = [];
  for (let dir = target; ; dir = dirname(dir)) {
    try {
      if (!(await stat(dir)).isDirectory()) throw notADirectory(target, dir);
      return missing.reverse();
    } catch (err) {
      if (err instanceof DirectoryCreationError) throw err;
      if (!WALK_ON.has((err as NodeJS.ErrnoException).code ?? '') || dirname(dir) === dir) throw new DirectoryCreationError(target, dir, err as NodeJS.ErrnoException);
      missing.push(dir);
    }
  }
}

function missingFromTopSync(target: string): string[] {
  const missing: string[] = [];
  for (let dir = target; ; dir = dirname(dir)) {
    try {
      if (!statSync(dir).isDirectory()) throw notADirectory(target, dir);
      return missing.reverse();
    } catch (err) {
      if (err instanceof DirectoryCreationError) throw err;
      if (!WALK_ON.has((err as NodeJS.ErrnoException).code ?? '') || dirname(dir) === dir) throw new DirectoryCreationError(target, dir, err as NodeJS.ErrnoException);
      missing.push(dir);
    }
  }
}

/** Not there (ENOENT), or under a file (ENOTDIR): look further up, for the message to name the file. */
const WALK_ON = new Set(['ENOENT', 'ENOTDIR']);

function notADirectory(target: string, at: string): DirectoryCreationError {
  const code = at === target ? 'EEXIST' : 'ENOTDIR';
  return new DirectoryCreationError(target, at, Object.assign(new Error(`${code}: not a directory: ${at}`), { code }));
}

/** Whether `dir` is a directory now (another process may have made it between our look and our mkdir). */
async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then((s) => s.isDirectory(), () => false);
}

function isDirectorySync(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
