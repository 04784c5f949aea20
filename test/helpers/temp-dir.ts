/**
 * Temporary directories for tests, removed whether the test passes or fails.
 *
 * vitest runs a test's `onTestFinished` callbacks, and a block's `afterAll` hooks, last-registered
 * first. So make the directory BEFORE starting the server, agent or child process that writes into
 * it (whose helpers register their own close): that one is stopped before its directory is removed,
 * and the removal does not race a process still writing there.
 */
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

/**
 * A fresh directory `<tmpdir>/<prefix>XXXXXX`, removed when the current test finishes. Call it in a
 * test, or in a `beforeEach` (then each test gets its own).
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => removeDir(dir));
  return dir;
}

/**
 * A directory shared by the tests of the calling file or `describe` block (call it in the block's
 * body, not in a test): made when first asked for, removed after the block's last test. Ask for it
 * in a `beforeAll` registered after this call, or in a test.
 */
export function sharedTempDir(prefix: string): () => string {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir !== undefined) await removeDir(dir);
  });
  return () => (dir ??= mkdtempSync(join(tmpdir(), prefix)));
}

/** Retries: a child that was just killed may still have a file open or be mid-write. */
function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
