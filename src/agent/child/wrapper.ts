/**
 * The wrapper: a few lines of `/bin/sh` that run the job's command and then write its exit status
 * into the job directory. Without it, a child that outlives a crashed agent would end unobserved (its
 * parent, the agent, is gone), and the restarted agent could not tell success from failure.
 *
 * The wrapper is the process the agent spawns; it is the group and session leader, and the command is
 * its child in the same group, so the group signal of {@link stopGroup} reaches both.
 *
 * - The wrapper traps TERM, INT and HUP with a handler, not with `''`: a handler is reset to the default
 *   in the command at exec, whereas an ignored signal would stay ignored there. POSIX defers a trap
 *   while the shell waits for a foreground command, so the wrapper outlives the command and records it.
 * - The status goes to a temp file first and is then renamed, so a reader never sees half a line.
 * - That temp file is made by the agent before the command starts ({@link EXIT_STATUS_RESERVED}),
 *   and handed to the wrapper open, as its descriptor 3; the wrapper overwrites it in place at the
 *   end: a job that fills its disk to the last byte leaves no room for a new file, and a status never
 *   recorded makes a restarted agent run the job again. The status is padded to three digits so that
 *   it covers the reserved bytes exactly. The wrapper never opens the path itself while it has the
 *   descriptor, so what the job does to the path (a Docker job's container has the job directory
 *   mounted; it could leave a symbolic link to the agent's journal there) is never written through,
 *   and a job that made its files read-only does not lose its status. The command does not inherit
 *   the descriptor. Without one (no room even at the start), or when the path no longer names that
 *   file at the end (removed, or replaced by the job: a symbolic link, a forged status), the status
 *   is written to a new file of an unguessable name (`mktemp`) and renamed into place.
 * - Before it writes the status, the wrapper flushes the job directory's file system to disk
 *   (`sync -f`, one `syncfs(2)`): the command and its children never fsync their outputs, and a
 *   power cut after the status (or the agent's journal record of it) reached the disk, but before
 *   the outputs did, would let recovery upload truncated files as a success. Its cost is bounded by
 *   the dirty pages of that file system, which the kernel would write within seconds anyway: one
 *   call per job, however many files it wrote, paid once when the job ends. A status lost to a
 *   power cut is safe: the job counts as vanished and runs again.
 * - A shell reports a command killed by signal N as status 128+N; a command that itself exits with
 *   128+N is indistinguishable (the same ambiguity every shell has). {@link exitFromStatus} reads
 *   128+N as the signal, which is what such exits almost always mean.
 * - A SIGKILL of the whole group kills the wrapper too, so no status is written; the agent that sent
 *   it knows why, and an agent that did not is told `source: 'lost'`.
 */
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import type { JobDir } from './job-dir.js';

/**
 * Run as `/bin/sh -c WRAPPER_SCRIPT ufdl-job <exit-status> <lease> <fenced> <every> <grace> <outside-kill> <argv…>`.
 *
 * With a lease file (empty `<lease>`: none), a watcher in the background reads the lease's deadline
 * every `<every>` seconds and compares it with the boot clock (`/proc/uptime`, which wall-clock jumps
 * do not move). The agent renews the deadline whenever the server answers it; a deadline that passes
 * means the agent is stopped, frozen or cut off, and the server will soon give the job to another
 * node. The watcher then writes `<fenced>`, sends SIGTERM to the job's group, and SIGKILL after
 * `<grace>` seconds: the job stops whether or not the agent runs. Work outside the group (a Docker
 * job's container, which belongs to the engine: SIGKILL of the `docker run` client leaves it running)
 * is ended first by the script `<outside-kill>` when one is named (e.g. `docker container kill`),
 * given at most {@link OUTSIDE_KILL_WAIT_S} seconds. The watcher survives the group's
 * SIGTERM with a no-op trap (so the command it runs, `sleep`, does not inherit an ignored signal) and
 * leaves when the wrapper tells it to with SIGUSR1.
 */
/** The longest the wrapper waits for `<outside-kill>` before it kills the group anyway (an engine that hangs). */
export const OUTSIDE_KILL_WAIT_S = 30;

export const WRAPPER_SCRIPT = [
  "trap 'ufdl_signal=TERM' TERM",
  "trap 'ufdl_signal=INT' INT",
  "trap 'ufdl_signal=HUP' HUP",
  'ufdl_status_file=$1 ufdl_lease=$2 ufdl_fenced=$3 ufdl_every=$4 ufdl_grace=$5 ufdl_outside_kill=$6',
  'shift 6',
  // The reserved status file is descriptor 3 when the agent could make it (see the module comment).
  // `true`, not `:`: a failed redirection of a special built-in would end the wrapper.
  '{ true >&3; } 2>/dev/null && ufdl_status_fd=3 || ufdl_status_fd=',
  'ufdl_watcher=',
  'if [ -n "$ufdl_lease" ]; then',
  '  (',
  '    ufdl_sleep=',
  "    trap ':' TERM INT HUP",
  `    trap 'kill -KILL $ufdl_sleep 2>/dev/null; exit 0' USR1`,
  '    while :; do',
  '      sleep "$ufdl_every" & ufdl_sleep=$!',
  '      wait "$ufdl_sleep"',
  '      ufdl_deadline=',
  '      read -r ufdl_deadline < "$ufdl_lease" || continue',
  '      read -r ufdl_up ufdl_idle < /proc/uptime || continue',
  '      case $ufdl_deadline in "" | *[!0-9]*) continue ;; esac',
  '      [ "${ufdl_up%.*}" -lt "$ufdl_deadline" ] && continue',
  `      printf '{"uptime":%s,"deadline":%s}\\n' "\${ufdl_up%.*}" "$ufdl_deadline" > "$ufdl_fenced"`,
  "      echo 'ufdl-job: the agent did not renew the job lease in time (it is stopped, frozen or cut off from the server); stopping the job so that it never runs on two nodes at once' >&2",
  '      kill -TERM 0',
  '      sleep "$ufdl_grace" & ufdl_sleep=$!',
  '      wait "$ufdl_sleep"',
  '      if [ -n "$ufdl_outside_kill" ]; then',
  '        /bin/sh "$ufdl_outside_kill" </dev/null >/dev/null 2>&1 & ufdl_killer=$! ufdl_waited=0',
  `        while kill -0 "$ufdl_killer" 2>/dev/null && [ "$ufdl_waited" -lt ${OUTSIDE_KILL_WAIT_S} ]; do`,
  '          sleep 1 & ufdl_sleep=$!',
  '          wait "$ufdl_sleep"',
  '          ufdl_waited=$((ufdl_waited + 1))',
  '        done',
  '      fi',
  '      kill -KILL 0',
  '    done',
  '  ) &',
  '  ufdl_watcher=$!',
  'fi',
  '"$@" 3>&-',
  'ufdl_rc=$?',
  'if [ -n "$ufdl_watcher" ]; then kill -USR1 "$ufdl_watcher" 2>/dev/null; wait "$ufdl_watcher"; fi',
  // Durable outputs before a durable status (see the module comment): one syncfs of the job
  // directory's file system, or a whole `sync` where `sync -f` is unknown. `command -p`: the job's
  // PATH may not name `sync`.
  'command -p sync -f "${ufdl_status_file%/*}" 2>/dev/null || command -p sync',
  // Into the room the agent reserved (see EXIT_STATUS_RESERVED), if the path still names that very file
  // (`-ef` against the descriptor; not a symbolic link the job put there, nor a file of its own
  // making); else into a new file of a name no one could know beforehand (`mktemp`: O_EXCL).
  `ufdl_format='{"status":%3d}\\n' ufdl_tmp="$ufdl_status_file.tmp"`,
  'if [ -n "$ufdl_status_fd" ] && [ ! -h "$ufdl_tmp" ] && [ "$ufdl_tmp" -ef /dev/fd/3 ] && printf "$ufdl_format" "$ufdl_rc" >&3 && mv -f "$ufdl_tmp" "$ufdl_status_file" 2>/dev/null; then :',
  'else ufdl_tmp=$(command -p mktemp "$ufdl_status_file.XXXXXX") && printf "$ufdl_format" "$ufdl_rc" > "$ufdl_tmp" && mv -f "$ufdl_tmp" "$ufdl_status_file"; fi',
  'exit "$ufdl_rc"',
].join('\n');

/**
 * What the agent writes to a new `exit-status.tmp` before it starts the wrapper: the room for the status,
 * the same length as the line the wrapper writes over it (`{"status":%3d}` and a newline; a status is
 * 0–255). Overwriting bytes a file already has needs no new block on ext4, XFS or tmpfs; a
 * copy-on-write file system (btrfs, ZFS) may still refuse it when full, and then the job counts as
 * vanished, as before.
 */
export const EXIT_STATUS_RESERVED = '{"status":---}\n';

/** The `$0` of the wrapper, which `ps` shows. */
export const WRAPPER_NAME = 'ufdl-job';

/** How a job's command ended. */
export interface ExitResult {
  /** The exit code, or `null` when the command was killed by a signal or its end is unknown. */
  code: number | null;
  /** The signal that killed the command (`SIGTERM`, `SIGKILL`, …), or `null`. */
  signal: NodeJS.Signals | null;
  /**
   * How the result was learned: `wrapper` from the `exit-status` file (exact for exits below 128);
   * `wait` from the agent's own wait for the wrapper, which had no chance to write (group SIGKILL);
   * `lost` when a re-attached process vanished without a status file (its end is unknown).
   */
  source: 'wrapper' | 'wait' | 'lost';
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

/** Interpret a shell status: 0–128 an exit code, 128+N signal N (see the module comment). */
export function exitFromStatus(status: number): ExitResult {
  const signal = status > 128 ? SIGNAL_NAMES.get(status - 128) : undefined;
  return signal ? { code: null, signal, source: 'wrapper' } : { code: status, signal: null, source: 'wrapper' };
}

/**
 * The exit status the wrapper recorded in a job directory's `exit-status` file, or `undefined` when
 * there is none yet (the command still runs, or the wrapper was killed before it could write).
 */
export async function readExitStatus(dir: Pick<JobDir, 'exitStatusPath'>): Promise<ExitResult | undefined> {
  let text: string;
  try {
    text = await readFile(dir.exitStatusPath, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as { status?: unknown };
    if (typeof parsed.status === 'number' && Number.isInteger(parsed.status) && parsed.status >= 0) {
      return exitFromStatus(parsed.status);
    }
  } catch {
    // A corrupt file cannot come from the wrapper's rename; treat it like no file.
  }
  return undefined;
}

/** Whether an exit counts as success. */
export function isSuccess(exit: ExitResult): boolean {
  return exit.code === 0 && exit.signal === null;
}
