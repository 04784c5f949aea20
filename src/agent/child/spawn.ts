/**
 * Spawn a job's command under the exit-status wrapper, in its own session and process group, with
 * stdin on `/dev/null` and stdout and stderr appended to one file in the job directory.
 *
 * The output goes to a file opened here and handed to the child as its descriptors, not through pipes:
 * a pipe would close when the agent dies and the next write would kill the child with SIGPIPE, whereas
 * a file keeps working, and the agent reads the file back for progress and the live log. stdout and
 * stderr share one open file (one offset, O_APPEND), so the file holds them in the order they were
 * written, as a terminal would show them, and a child that prints fast is never slowed by the agent.
 */
import { spawn } from 'node:child_process';
import { open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeLease } from './lease.js';
import { childrenOf, readCmdline, readProcStat } from './proc.js';
import type { ChildSpec, RunningChild } from './running-child.js';
import { EXIT_STATUS_RESERVED, readExitStatus, WRAPPER_NAME, WRAPPER_SCRIPT, type ExitResult } from './wrapper.js';

/** The shell that runs the wrapper. POSIX `sh` is everywhere the agent runs. */
export const WRAPPER_SHELL = '/bin/sh';

/**
 * Make the file the wrapper writes the exit status into, while there is room, and open it for the
 * wrapper, which gets it as its descriptor 3 (wrapper.ts). A new file (`wx`): whatever a job left at
 * the path (a Docker job's container has the job directory mounted; a symbolic link to the agent's
 * journal) is removed, never opened. Best effort, never a reason not to start the child: on a disk
 * already full (a job's container that kept running while the agent restarted, and is followed now)
 * there is no reservation, and the wrapper makes a file itself at the end, as it did before there
 * was one.
 */
async function reserveExitStatus(path: string): Promise<FileHandle | undefined> {
  let file: FileHandle | undefined;
  try {
    await rm(path, { force: true });
    file = await open(path, 'wx');
    // At offset 0 without moving the file's offset (pwrite): the wrapper writes over these bytes.
    const room = Buffer.from(EXIT_STATUS_RESERVED);
    await file.write(room, 0, room.length, 0);
    return file;
  } catch {
    // No room, or something the job put at the path (a directory, a file put back at once): no
    // reservation; the wrapper's own fallback still records the status where it can.
    await file?.close();
    return undefined;
  }
}

/**
 * Start `spec` and return once its command runs (see {@link commandStarted}), so that a stop sent
 * the moment this resolves is never lost. Rejects when it cannot be spawned at all (missing working
 * directory, no `/bin/sh`); a command that is not found is an ordinary exit with status 127.
 */
export async function spawnJob(spec: ChildSpec): Promise<RunningChild> {
  if (spec.argv.length === 0) throw new TypeError('spawnJob: the command (argv) is empty');
  const { dir } = spec;
  // A status left by an earlier attempt would make this child look ended at once.
  await rm(dir.exitStatusPath, { force: true });
  await rm(dir.fencedPath, { force: true });
  await rm(dir.outsideKillPath, { force: true });
  if (spec.lease) writeLease(dir, spec.lease.deadlineS);
  const fenceKill = spec.lease ? spec.outside?.fenceKill : undefined;
  if (fenceKill) await writeFile(dir.outsideKillPath, `exec ${fenceKill.map(shellQuote).join(' ')}\n`, { mode: 0o600 });
  const leaseArgs = spec.lease
    ? [dir.leasePath, dir.fencedPath, String(spec.lease.checkEveryS), String(spec.lease.graceS), fenceKill ? dir.outsideKillPath : '']
    : ['', dir.fencedPath, '1', '1', ''];
  // Last before the spawn, so that nothing that may fail in between leaves the handle open.
  const reserved = await reserveExitStatus(`${dir.exitStatusPath}.tmp`);
  let output: FileHandle;
  try {
    output = await open(dir.consolePath, 'a');
  } catch (err) {
    await reserved?.close();
    throw err;
  }
  // The spawn time, to the millisecond; the start time in /proc is only as exact as the boot time
  // (whole seconds), which would skew a short time limit.
  const startedAtMs = Date.now();
  try {
    const child = spawn(WRAPPER_SHELL, ['-c', WRAPPER_SCRIPT, WRAPPER_NAME, dir.exitStatusPath, ...leaseArgs, ...spec.argv], {
      cwd: spec.cwd,
      env: spec.env,
      // setsid(): a new session and process group, led by the wrapper, and no controlling terminal,
      // so the agent's terminal or its own group signals never reach the job by accident.
      detached: true,
      stdio: ['ignore', output.fd, output.fd, reserved?.fd ?? 'ignore'],
    });
    // Read the start time now, synchronously: until the event loop runs, the process cannot have
    // been reaped, so even one that ends at once is still in /proc (maybe as a zombie).
    const stat = child.pid === undefined ? undefined : readProcStat(child.pid);
    const exited = new Promise<ExitResult>((resolve) => {
      child.once('exit', (code, signal) => {
        void readExitStatus(dir).then((recorded) => resolve(recorded ?? { code, signal, source: 'wait' }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      // Kept for the child's lifetime: a later 'error' (e.g. a failed kill) must not crash the agent;
      // the group is signalled through process.kill in stopGroup anyway, never through `child`.
      child.on('error', reject);
    });
    if (child.pid === undefined || stat === undefined) {
      // Without its start time the child could never be re-attached safely; do not leave it running.
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      throw new Error(`spawned job ${dir.pk} but could not read /proc for its pid ${String(child.pid)}`);
    }
    await commandStarted(child.pid);
    return {
      pid: child.pid,
      startTime: stat.startTime,
      startedAtMs,
      dir,
      origin: 'spawned',
      exited,
      outside: spec.outside,
    };
  } finally {
    // The child has its own copies of the descriptors (dup'ed at fork); ours are no longer needed.
    await output.close();
    await reserved?.close();
  }
}

/** `value` as one word of a POSIX shell command line: single-quoted, each `'` closed, escaped and reopened. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/** How long {@link commandStarted} waits before giving up (a machine under extreme load). */
const START_WAIT_MS = 5000;

/**
 * Wait until the wrapper's command has been exec'd (or everything has ended already).
 *
 * Until then a group SIGTERM is lost: the wrapper has it trapped (its handler only runs after the
 * command), and the command either does not exist yet or is a forked copy of the wrapper that still
 * carries the handler and loses the signal at exec. The job would then run on until SIGKILL. A
 * forked copy has the wrapper's own `cmdline`; the exec'd command has its own.
 */
async function commandStarted(pid: number): Promise<void> {
  const wrapperCmdline = readCmdline(pid);
  const deadline = Date.now() + START_WAIT_MS;
  for (let pause = 1; Date.now() < deadline; pause = Math.min(pause * 2, 20)) {
    const stat = readProcStat(pid);
    if (!wrapperCmdline || !stat || stat.state === 'Z') return; // ended already
    for (const child of childrenOf(pid)) {
      const cmdline = readCmdline(child);
      if (cmdline && cmdline.length > 0 && !cmdline.equals(wrapperCmdline)) return;
    }
    await sleep(pause);
  }
}
