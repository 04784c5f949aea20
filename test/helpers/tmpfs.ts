/**
 * Small tmpfs mounts for tests that need a really full disk (fill one to the last byte). Mounting
 * needs root and CAP_SYS_ADMIN (CI runs as root); tests skip, saying why, where it cannot be done.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/** Why a tmpfs cannot be mounted here, or null when it can (tried once, on a throw-away mount point). */
export function whyNoTmpfs(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const point = mkdtempSync(join(tmpdir(), 'ufdl-tmpfs-check-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', point], { stdio: 'pipe' });
    execFileSync('umount', [point], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmdirSync(point);
  }
}

/**
 * A tmpfs of `bytes` at `<parent>/<name>`, unmounted when the current test finishes. Call it after
 * making `parent` (tempDir) and before opening anything on it: the callbacks run last-registered
 * first, so what is open there is closed, then the mount goes, then `parent` is removed.
 */
export function mountTmpfs(parent: string, name: string, bytes: number): string {
  const point = join(parent, name);
  mkdirSync(point);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', point], { stdio: 'pipe' });
  // Lazy (-l): a job's child that a killed agent left running may still have a file open there.
  onTestFinished(() => void execFileSync('umount', ['-l', point], { stdio: 'pipe' }));
  return point;
}
