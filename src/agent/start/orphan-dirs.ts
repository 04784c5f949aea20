/**
 * Job directories that nothing owns any more. An agent killed between closing a job's journal entry
 * (`done`) and removing the job's directory leaves the directory behind, outputs and all, and no
 * later start would look at it again. Recovery removes every job directory of the work directory —
 * `<work_dir>/server-<hex>/<pk>/`, and `<work_dir>/<pk>/` of versions before the per-server
 * directories — that no unfinished journal entry of any server owns (the one {@link journalledJobDir}
 * gives it, as recovery does). A per-server directory left empty is removed too (else one stays
 * for every server the agent ever worked for), unless an unfinished entry's directory is in it
 * (whether or not that exists yet). Nothing else in the work directory is touched.
 *
 * Run at start-up after recovery and before the first poll: no job is being acquired, so no job
 * directory is being created in a per-server directory meanwhile. Even so, a per-server directory is
 * removed with `rmdir`, which removes only an empty directory, at once: a job directory made in it
 * after it was read makes the removal fail (and the directory stay), never disappear with it.
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { JOB_DIR_NAME, journalledJobDir, SERVER_DIR_NAME } from '../child/job-dir.js';
import type { JobRecord } from '../journal/records.js';
import type { LogPort } from '../ports.js';

/** What {@link removeOrphanJobDirs} removed. */
export interface OrphanDirsRemoved {
  /** Job directories that no unfinished entry owns. */
  jobDirs: string[];
  /** Per-server directories (`server-<hex>`) left empty. */
  serverDirs: string[];
}

/**
 * Remove the job directories of `workDir` that none of `unfinished` owns, then the per-server
 * directories left empty that none of them is in. Only before the first poll (see above).
 */
export async function removeOrphanJobDirs(
  workDir: string,
  unfinished: readonly Pick<JobRecord, 'serverUrl' | 'jobPk' | 'jobDir'>[],
  log: LogPort,
): Promise<OrphanDirsRemoved> {
  const owned = new Set(unfinished.map((entry) => journalledJobDir(entry, workDir).root));
  const ownedParents = new Set([...owned].map((root) => dirname(root)));
  const removed: OrphanDirsRemoved = { jobDirs: [], serverDirs: [] };
  const work = resolve(workDir);
  for (const name of await directoriesIn(work)) {
    if (JOB_DIR_NAME.test(name)) await removeUnowned(join(work, name), owned, removed.jobDirs, log);
    else if (SERVER_DIR_NAME.test(name)) {
      const serverDir = join(work, name);
      for (const inner of await directoriesIn(serverDir)) {
        if (JOB_DIR_NAME.test(inner)) await removeUnowned(join(serverDir, inner), owned, removed.jobDirs, log);
      }
      if (!ownedParents.has(serverDir) && (await removeIfEmpty(serverDir, log))) removed.serverDirs.push(serverDir);
    }
  }
  if (removed.jobDirs.length > 0) log.info({ dirs: removed.jobDirs }, 'removed job directories that no unfinished journal entry owns');
  if (removed.serverDirs.length > 0) log.info({ dirs: removed.serverDirs }, 'removed empty per-server job directories');
  return removed;
}

/** Remove `dir` if it is empty (`rmdir`: never its content); whether it was removed. */
async function removeIfEmpty(dir: string, log: LogPort): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Not empty (something the operator put there, or a job directory that could not be removed), or
    // gone already: nothing to say.
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') log.warn({ dir, err: String(err) }, 'could not remove an empty per-server job directory');
    return false;
  }
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
