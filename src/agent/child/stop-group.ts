/**
 * Stop a job's process group: SIGTERM, a grace period, SIGKILL, then a check in `/proc` that nothing
 * of the group survives (grace, then force: docs/ARCHITECTURE.md, "Conventions" 5).
 *
 * Members are found by process group *and* by session (the wrapper leads both), so a grandchild that
 * moved itself into a new process group is still stopped; one that called `setsid` itself has left
 * both and is beyond this check (a cgroup would be needed; the Docker executor has one).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { groupMembers, readProcStat, type ProcStat } from './proc.js';
import type { RunningChild } from './running-child.js';

/** Options of {@link stopGroup}. */
export interface StopGroupOptions {
  /** How long the group may take to end after SIGTERM before it is killed. */
  graceMs: number;
  /**
   * How long to wait for killed processes to vanish before reporting them as survivors.
   * @default 5000
   */
  killWaitMs?: number;
  /**
   * How often `/proc` is scanned while waiting.
   * @default 50
   */
  pollMs?: number;
}

/** What {@link stopGroup} did and found. */
export interface StopGroupResult {
  /** The group had live members when the stop began. */
  wasRunning: boolean;
  /** SIGKILL was needed: something outlived the grace period. */
  forced: boolean;
  /** Processes of the group still alive after SIGKILL and `killWaitMs` (should always be empty). */
  survivors: ProcStat[];
}

/**
 * SIGTERM the group, wait up to `graceMs`, SIGKILL what is left, and verify nothing survives.
 *
 * Pass the pid of a {@link RunningChild} only: its identity was checked (pid and start time) when it
 * was spawned or attached. A pid read from the journal and not checked may name another process by now.
 */
export async function stopGroup(pgid: number, options: StopGroupOptions): Promise<StopGroupResult> {
  // The agent's own group would be a bug elsewhere (e.g. a corrupt journal entry); never signal it.
  if (!Number.isSafeInteger(pgid) || pgid <= 1 || pgid === readProcStat(process.pid)?.pgid) {
    throw new TypeError(`stopGroup: refusing to signal process group ${pgid}`);
  }
  const pollMs = options.pollMs ?? 50;
  if (groupMembers(pgid).length === 0) return { wasRunning: false, forced: false, survivors: [] };

  signalAll(pgid, 'SIGTERM');
  if (await waitForEmpty(pgid, options.graceMs, pollMs)) return { wasRunning: true, forced: false, survivors: [] };

  signalAll(pgid, 'SIGKILL');
  await waitForEmpty(pgid, options.killWaitMs ?? 5000, pollMs);
  return { wasRunning: true, forced: true, survivors: groupMembers(pgid) };
}

/** Signal the group, and each session member that is outside the group. */
function signalAll(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is empty (its members may have moved to other groups of the session).
  }
  for (const member of groupMembers(pgid)) {
    if (member.pgid === pgid) continue;
    try {
      process.kill(member.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Poll until the group has no live member or `ms` passed; true when it became empty. */
async function waitForEmpty(pgid: number, ms: number, pollMs: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (groupMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}
