/**
 * Job directories that nothing owns any more. An agent killed between closing a job's journal entry
 * (`done`) and removing the job's directory leaves the directory behind, outputs and all, and no
 * later start would look at it again. Recovery removes every job directory of the work directory —
 * `<work_dir>/server-<hex>/<pk>/`, and `<work_dir>/<pk>/` of versions before the per-server
 * directories — that no unfinished journal entry of any server owns (the one {@link journalledJobDir}
 * gives it, as recovery does). Nothing else in the work directory is touched, nor the per-server
 * directories themselves.
 */
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { JOB_DIR_NAME, journalledJobDir, SERVER_DIR_NAME } from '../child/job-dir.js';
import type { JobRecord } from '../journal/records.js';
import type { LogPort } from '../ports.js';

/** Remove the job directories of `workDir` that none of `unfinished` owns; returns the directories removed. */
export async function removeOrphanJobDirs(
  workDir: string,
  unfinished: readonly Pick<JobRecord, 'serverUrl' | 'jobPk' | 'jobDir'>[],
  log: LogPort,
): Promise<string[]> {
  const owned = new Set(unfinished.map((entry) => journalledJobDir(entry, workDir).root));
  const removed: string[] = [];
  const work = resolve(workDir);
  for (const name of await directoriesIn(work)) {
    if (JOB_DIR_NAME.test(name)) await removeUnowned(join(work, name), owned, removed, log);
    else if (SERVER_DIR_NAME.test(name)) {
      for (const inner of await directoriesIn(join(work, name))) {
        if (JOB_DIR_NAME.test(inner)) await removeUnowned(join(work, name, inner), owned, removed, log);
      }
    }
  }
  if (removed.length > 0) log.info({ dirs: removed }, 'removed job directories that no unfinished journal entry owns');
  return removed;
}

async function removeUnowned(root: string, owned: ReadonlySet<string>, removed: string[], log: LogPort): Promise<void> {
  if (owned.has(root)) return;
  try {
    await rm(root, { recursive: true, force: true });
    removed.push(root);
  } catch (err) {
    log.warn({ dir: root, err: String(err) }, 'could not remove a job directory no journal entry owns');
  }
}

/** The names of the directories in `dir`; none when it does not exist (no work directory yet). */
async function directoriesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}
