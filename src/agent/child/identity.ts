/**
 * A process's identity beyond its pid, so a pid re-used by an unrelated process after a crash or a
 * reboot is never mistaken for the child (or the agent) the journal recorded.
 *
 * On Linux the identity is `<boot id>:<start time in clock ticks>` from `/proc` (`proc.ts`): the
 * start time (field 22 of `/proc/<pid>/stat`) is unique per pid within one boot, and the boot id
 * changes on every boot. Elsewhere there is no cheap equivalent, so the identity is null and callers
 * fall back to a liveness check on the pid alone.
 */
import { bootId, readProcStat } from './proc.js';

/**
 * The start identity of process `pid`, or null when it does not exist or the platform has no
 * `/proc`. Recorded next to the pid of a child and of the journal's lock holder.
 */
export function processStartIdentity(pid: number): string | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const boot = bootId();
  if (boot === null) return null;
  const stat = readProcStat(pid);
  return stat === undefined ? null : `${boot}:${stat.startTime}`;
}

/**
 * True when a process with this pid exists (even one we may not signal) and, when `startIdentity`
 * is given and the platform can tell, it is the same process that identity was taken from.
 */
export function isProcessAlive(pid: number, startIdentity?: string | null): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startIdentity === undefined || startIdentity === null) return true;
  // Without /proc there is nothing to compare: trust the signal check.
  if (bootId() === null) return true;
  // Null here means it exited between the two checks.
  return processStartIdentity(pid) === startIdentity;
}

/** The identity to journal for a child started at `startTime` (clock ticks since boot). */
export function childStartIdentity(startTime: number): string | null {
  const boot = bootId();
  return boot === null ? null : `${boot}:${startTime}`;
}

/**
 * The start ticks of a journalled identity, or undefined when it is from another boot (the child
 * cannot still run) or unreadable.
 */
export function startTicksOf(identity: string | null): number | undefined {
  if (identity === null) return undefined;
  const cut = identity.lastIndexOf(':');
  if (identity.slice(0, cut) !== bootId()) return undefined;
  const ticks = Number(identity.slice(cut + 1));
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}
