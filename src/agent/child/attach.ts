/**
 * Re-attach to a job's child after an agent restart (docs/ARCHITECTURE.md, "Recovery"): the journal has the pid and start
 * time; if that very process still runs, the agent follows it to its end instead of stopping it.
 *
 * The process is no longer the agent's child, so its end cannot be waited for; it is polled for in
 * `/proc`, and its exit status comes from the wrapper's `exit-status` file.
 */
import { bootTime, isSameLiveProcess, processIds, readCmdline, readProcStat, startTimeToEpochMs, type ProcStat } from './proc.js';
import type { JobDir } from './job-dir.js';
import type { RunningChild } from './running-child.js';
import { readExitStatus, WRAPPER_NAME, type ExitResult } from './wrapper.js';

/** Options of {@link attach}. */
export interface AttachOptions {
  /**
   * How often to look for the end of the process.
   * @default 250
   */
  pollMs?: number;
}

/**
 * A handle on the process `pid` if it is still the one started at `startTime` and still leads its
 * process group (as the wrapper does); `undefined` otherwise, in which case the child has ended and
 * {@link readExitStatus} says how, if the wrapper could tell.
 */
export function attach(pid: number, startTime: number, dir: JobDir, options: AttachOptions = {}): RunningChild | undefined {
  const stat = readProcStat(pid);
  if (!stat || stat.startTime !== startTime || stat.state === 'Z' || stat.pgid !== pid) return undefined;
  void bootTime(); // read once now, while /proc is certainly readable
  const pollMs = options.pollMs ?? 250;
  const exited = new Promise<ExitResult>((resolve) => {
    const check = async () => {
      const recorded = await readExitStatus(dir);
      if (recorded) return resolve(recorded);
      if (!isSameLiveProcess(pid, startTime)) {
        // The wrapper writes before it exits, so a status that exists is on disk by now.
        return resolve((await readExitStatus(dir)) ?? { code: null, signal: null, source: 'lost' });
      }
      // Unref'd: watching a child must not by itself keep the agent process alive.
      setTimeout(() => void check(), pollMs).unref();
    };
    void check();
  });
  return { pid, startTime, startedAtMs: startTimeToEpochMs(startTime), dir, origin: 'attached', exited };
}

/**
 * A live wrapper of this job directory that the journal has no pid for (the agent died between the
 * spawn and writing `running`): the wrapper's command line names the job's `exit-status` path.
 */
export function findWrapper(dir: JobDir): ProcStat | undefined {
  for (const pid of processIds()) {
    const argv = readCmdline(pid)?.toString('utf8').split('\0');
    if (argv === undefined || !argv.includes(WRAPPER_NAME) || !argv.includes(dir.exitStatusPath)) continue;
    const stat = readProcStat(pid);
    if (stat !== undefined) return stat;
  }
  return undefined;
}
