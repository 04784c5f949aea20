/**
 * A process's identity beyond its pid, so a pid re-used by an unrelated process after a crash or a
 * reboot is never mistaken for the child (or agent) the journal recorded.
 *
 * On Linux the identity is `<boot id>:<start time in clock ticks>` from `/proc`: the start time
 * (field 22 of `/proc/<pid>/stat`) is unique per pid within one boot, and the boot id changes on
 * every boot. Elsewhere there is no cheap equivalent, so the identity is null and callers fall back
 * to a liveness check on the pid alone.
 */
import { readFileSync } from 'node:fs';

let bootId: string | null | undefined;

function readBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

/**
 * The start identity of process `pid`, or null when it does not exist or the platform has no
 * `/proc`. Record it next to the pid when spawning a child; compare it on re-attach.
 */
export function processStartIdentity(pid: number): string | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const boot = readBootId();
  if (boot === null) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so
  // split after the last ')'. What follows starts at field 3 (state); start time is field 22.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTicks = rest[22 - 3];
  return startTicks === undefined || !/^\d+$/.test(startTicks) ? null : `${boot}:${startTicks}`;
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
  if (readBootId() === null) return true;
  // Null here means it exited between the two checks.
  return processStartIdentity(pid) === startIdentity;
}
