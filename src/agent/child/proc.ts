/**
 * The agent's one reader of `/proc` (Linux): process identity for re-attaching after an agent restart
 * (`identity.ts` builds on it), process-group membership for checking that a stopped job left nothing
 * behind, command lines for finding a job's wrapper, and the boot's id and clocks.
 *
 * A pid alone is not an identity: after a reboot or a long uptime the same number names another
 * process. The pair (pid, start time) is, because the start time (field 22 of `/proc/<pid>/stat`, in
 * clock ticks since boot) is fixed at fork and never reused for the same pid within one boot.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** The fields of `/proc/<pid>/stat` we use. */
export interface ProcStat {
  pid: number;
  /** The executable's name, as the kernel truncates it (15 chars). */
  comm: string;
  /** `R`, `S`, `D`, `Z` (zombie: ended, not yet reaped), `T`, … */
  state: string;
  ppid: number;
  pgid: number;
  /** Session id: a process that leaves our group with `setpgid` stays in the session. */
  sid: number;
  /** Clock ticks after boot at which the process was forked (field 22). */
  startTime: number;
}

/** Parse one `/proc/<pid>/stat` line. Returns `undefined` for text that is not one. */
export function parseProcStat(text: string): ProcStat | undefined {
  // `comm` is in parentheses and may itself contain spaces and `)`: split at the *last* `)`.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgid = Number(rest[2]);
  const sid = Number(rest[3]);
  const startTime = Number(rest[19]);
  if (state === undefined || ![pid, ppid, pgid, sid, startTime].every(Number.isSafeInteger)) return undefined;
  return { pid, comm: text.slice(open + 1, close), state, ppid, pgid, sid, startTime };
}

/** `/proc/<pid>/stat` of a live (or zombie) process, or `undefined` when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // ENOENT (gone) or ESRCH (exiting while read)
  }
}

/** Whether `pid` names the process that was started at `startTime` and has not ended. */
export function isSameLiveProcess(pid: number, startTime: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z';
}

/** The pids of every process in `/proc` (empty where there is no `/proc`). */
export function processIds(): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue; // only numeric entries are processes
    pids.push(Number(entry));
  }
  return pids;
}

/**
 * Processes in process group `pgid` or in session `pgid` (our wrapper is a session leader, so a
 * grandchild that moved itself into a new group with `setpgid` is still found). Zombies are excluded
 * unless asked for: they have ended and hold nothing but a pid, and their reaping is up to their parent.
 */
export function groupMembers(pgid: number, options: { includeZombies?: boolean } = {}): ProcStat[] {
  const members: ProcStat[] = [];
  for (const pid of processIds()) {
    const stat = readProcStat(pid);
    if (!stat || (stat.pgid !== pgid && stat.sid !== pgid)) continue;
    if (stat.state === 'Z' && !options.includeZombies) continue;
    members.push(stat);
  }
  return members;
}

/** The argv of a process as the kernel holds it (NUL-separated), or `undefined` when it is gone. */
export function readCmdline(pid: number): Buffer | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return undefined;
  }
}

/** The pids of `pid`'s children: from `/proc/<pid>/task/<pid>/children`, else by a scan of `/proc`. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    // Kernels without CONFIG_PROC_CHILDREN, or a process that just ended: fall back to ppid.
    const children: number[] = [];
    for (const member of groupMembers(pid, { includeZombies: true })) if (member.ppid === pid) children.push(member.pid);
    return children;
  }
}

let bootTimeMs: number | undefined;

/** The system's boot time (`btime` of `/proc/stat`), in ms since the epoch. */
export function bootTime(): number {
  if (bootTimeMs === undefined) {
    const match = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootTimeMs = match ? Number(match[1]) * 1000 : 0;
  }
  return bootTimeMs;
}

/**
 * Clock ticks per second of `/proc` times. The kernel's USER_HZ is 100 on every Linux architecture
 * Node runs on; it is not `CONFIG_HZ` and cannot be changed without breaking user space.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Wall-clock time (ms since the epoch) at which a process with this start time was forked. */
export function startTimeToEpochMs(startTime: number): number {
  return bootTime() + (startTime * 1000) / CLOCK_TICKS_PER_SECOND;
}

let bootIdValue: string | null | undefined;

/** The id of this boot (`/proc/sys/kernel/random/boot_id`), or null where there is none. */
export function bootId(): string | null {
  if (bootIdValue === undefined) {
    try {
      bootIdValue = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootIdValue = null;
    }
  }
  return bootIdValue;
}

/** Seconds since boot (`/proc/uptime`, CLOCK_BOOTTIME): a clock that neither NTP nor `date -s` moves. */
export function uptimeSeconds(): number {
  return Number.parseFloat(readFileSync('/proc/uptime', 'utf8'));
}
