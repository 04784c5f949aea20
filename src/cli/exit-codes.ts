/**
 * Named exit statuses (sysexits.h where one fits), so scripts and systemd can tell causes apart.
 * systemd's `Restart=on-failure` restarts on any non-zero status; `RestartPreventExitStatus=` in the
 * units lists the ones a restart cannot fix (usage and configuration errors).
 */
export const EXIT = {
  OK: 0,
  /** A job ended in error or was cancelled (`submit --wait`), or a command failed at the server. */
  FAILURE: 1,
  /** Bad command-line usage. */
  USAGE: 64,
  /** The server could not be reached. */
  UNAVAILABLE: 69,
  /** A bug: an unexpected exception. */
  SOFTWARE: 70,
  /**
   * The agent's journal is in use by another agent process (EX_TEMPFAIL): stop the other agent, or
   * give this one its own state directory.
   */
  JOURNAL_IN_USE: 75,
  /**
   * A temporary failure (EX_TEMPFAIL): a host name to listen on (`serve.host`, `agent.status_host`)
   * that the resolver still could not look up (EAI_AGAIN) after the command waited for it
   * (`host-lookup-wait.ts`, 10 minutes). systemd starts the command again.
   */
  TEMPFAIL: 75,
  /**
   * The agent's journal could not be written while jobs ran (disk full, I/O error: EX_IOERR). The
   * agent waited until it could write again and exited so that the restart's recovery settles the
   * jobs; systemd restarts it.
   */
  JOURNAL_WRITE_FAILED: 74,
  /**
   * A directory the command needs cannot be created (EX_CANTCREAT): the server's data directory, the
   * agent's work or journal directory. (The CLI's caches are only a shortcut: a command runs without
   * them.) The message names the path and why (a file in
   * the way, no permission, a read-only file system). systemd restarts the command, so a file system
   * mounted late, or permissions fixed meanwhile, need nothing more.
   */
  CANTCREAT: 73,
  /** Credentials were refused. */
  NOPERM: 77,
  /** The configuration is invalid. */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
