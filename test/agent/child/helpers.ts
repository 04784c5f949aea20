/**
 * Helpers for tests that run real child processes: a temporary work directory per test, a spec for a
 * shell snippet, waiting for what the child prints, and a guarantee that nothing a test started
 * outlives it.
 */
import { readFile } from 'node:fs/promises';
import { onTestFinished } from 'vitest';
import { childEnv, contractEnv } from '../../../src/agent/child/env.js';
import { createJobDir, jobDirPaths, type JobDir } from '../../../src/agent/child/job-dir.js';
import type { ChildSpec, RunningChild } from '../../../src/agent/child/running-child.js';
import { stopGroup } from '../../../src/agent/child/stop-group.js';
import { until } from '../../helpers/wait.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** A fresh work directory, removed when the test finishes. */
export function tempWorkDir(): Promise<string> {
  return tempDir('ufdl-agent-child-');
}

/** A fresh job directory for job `pk` in a fresh work directory. */
export async function tempJobDir(pk = 17): Promise<JobDir> {
  return createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', pk));
}

/** A spec that runs `script` with `/bin/sh -c` on a CPU slot in `dir`. */
export function shellSpec(dir: JobDir, script: string, extraEnv: Record<string, string> = {}): ChildSpec {
  return {
    argv: ['/bin/sh', '-c', script],
    env: childEnv(contractEnv(dir, null), extraEnv),
    cwd: dir.root,
    dir,
  };
}

/** Kill the child's whole group when the test finishes, whatever happened in it. */
export function reapOnFinish(child: Pick<RunningChild, 'pid'>): void {
  onTestFinished(async () => {
    await stopGroup(child.pid, { graceMs: 200 });
  });
}

/** The file's text, or '' when it does not exist yet. */
export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** Wait until the child's stdout contains `marker` (the child is ready for the test's next step). */
export async function waitForOutput(dir: JobDir, marker: string): Promise<void> {
  await until(async () => (await readText(dir.consolePath)).includes(marker), 20_000, `"${marker}" on stdout`);
}
