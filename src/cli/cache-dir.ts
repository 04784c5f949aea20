/**
 * Where the CLI keeps what it caches for the next command (its tokens, its compiled code):
 * `$XDG_CACHE_HOME/ufdl-agent`, else `~/.cache/ufdl-agent`.
 */
import { constants, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cliCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'ufdl-agent');
}

/**
 * A file name for `text`: two 32-bit FNV-1a hashes (node's crypto module would cost a command more
 * time to load than the rest of its start). Not a secret and need not be unique: each cache file
 * says what it was made for, and a file made for something else is no cache.
 */
export function fileKey(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return `${(a >>> 0).toString(16).padStart(8, '0')}${(b >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Whether a cache file may be trusted: a regular file of this user that no one else can read or
 * write (another user's file could hand this one's commands tokens or code of their choosing).
 */
export function isOwnPrivateFile(info: Stats): boolean {
  const ownUid = process.getuid?.();
  return info.isFile() && (ownUid === undefined || info.uid === ownUid) && (info.mode & 0o077) === 0;
}

/**
 * How a cache file is opened for reading: without blocking, so that a FIFO in its place (which
 * {@link isOwnPrivateFile} then refuses) cannot hold the command forever waiting for a writer.
 */
export const READ_WITHOUT_BLOCKING = constants.O_RDONLY | constants.O_NONBLOCK;
