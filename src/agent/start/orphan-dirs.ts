/**
 * Job directories that nothing owns any more. An agent killed between closing a job's journal entry
 * (`done`) and removing the job's directory leaves the directory behind, outputs and all, and no
 * later start would look at it again. Recovery removes every `<work_dir>/<pk>/` that no unfinished
 * journal entry owns — only directories named by a job pk; anything else in the work directory is
 * left alone.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogPort } from '../ports.js';

/** Remove the job directories of `workDir` whose pk is not in `owned`; returns the pks removed. */
export async function removeOrphanJobDirs(workDir: string, owned: ReadonlySet<number>, log: LogPort): Promise<number[]> {
  let entries;
  try {
    entries = await readdir(workDir, { withFileTypes: true });
  } catch {
    return []; // no work directory yet
  }
  const removed: number[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !/^[1-9][0-9]{0,15}$/.test(entry.name)) continue;
    const pk = Number(entry.name);
    if (owned.has(pk)) continue;
    try {
      await rm(join(workDir, entry.name), { recursive: true, force: true });
      removed.push(pk);
    } catch (err) {
      log.warn({ job: pk, err: String(err) }, 'could not remove a job directory no journal entry owns');
    }
  }
  if (removed.length > 0) log.info({ jobs: removed }, 'removed job directories that no unfinished journal entry owns');
  return removed;
}
