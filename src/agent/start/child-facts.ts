/**
 * What became of a journalled job's child while the agent was down, as recovery finds it: still
 * running (the same pid and start time: re-attach), ended with a known exit status (recorded in the
 * journal, or written by its wrapper), or gone without one.
 */
import { attach, findWrapper } from '../child/attach.js';
import { startTicksOf } from '../child/identity.js';
import type { JobDir } from '../child/job-dir.js';
import type { RunningChild } from '../child/running-child.js';
import { readExitStatus, type ExitResult } from '../child/wrapper.js';
import type { JobRecord } from '../journal/records.js';
import type { ChildFate } from './recovery-rules.js';

/** A job's child as recovery finds it. */
export interface ChildFacts {
  fate: ChildFate;
  /** The re-attached child, when it still runs. */
  child: RunningChild | undefined;
  /** How it ended, when that is known. */
  exit: ExitResult | undefined;
}

/** Look at the journal, `/proc` and the job directory. */
export async function childFacts(record: JobRecord, dir: JobDir): Promise<ChildFacts> {
  const known = recordedExit(record);
  if (known) return { fate: 'exited', child: undefined, exit: known };
  let pid = record.pid;
  let ticks = startTicksOf(record.pidStart);
  if (pid === null && (record.state === 'starting' || record.state === 'running')) {
    // Spawned but never journalled? Look for its wrapper.
    const found = findWrapper(dir);
    if (found !== undefined) {
      pid = found.pid;
      ticks = found.startTime;
    }
  }
  if (pid !== null && ticks !== undefined) {
    const child = attach(pid, ticks, dir);
    if (child) return { fate: 'alive', child, exit: undefined };
  }
  const exit = await readExitStatus(dir);
  if (exit) return { fate: 'exited', child: undefined, exit };
  return { fate: pid === null ? 'none' : 'gone', child: undefined, exit: undefined };
}

function recordedExit(record: JobRecord): ExitResult | undefined {
  if (record.exitCode === null && record.exitSignal === null) return undefined;
  return { code: record.exitCode, signal: record.exitSignal as NodeJS.Signals | null, source: 'wrapper' };
}
