/**
 * After a journal write failed inside a running job (disk full — often the job's own doing —, an I/O
 * error, a file system remounted read-only): wait until the journal takes a write again. The agent
 * then exits for a restart (agent.ts) rather than exiting at once, because a restart onto a disk that
 * is still full could not open the journal either, and systemd gives up on a unit that fails to
 * start too often; waiting here costs nothing and keeps `/readyz` saying why.
 */
import type { Journal } from '../journal/journal.js';
import type { LogPort } from '../ports.js';
import { retryDelayMs, sleepUnlessAborted } from '../timing.js';

/** Between two probes: from about a second, doubling, at most 30 s (jittered). */
const PROBE_BASE_MS = 1000;
const PROBE_MAX_MS = 30_000;

/**
 * Resolves true once a small real write to the journal commits, false when `signal` aborts first
 * (the agent is stopping anyway). Logs the first failed probe, then every tenth.
 */
export async function waitUntilWritable(journal: Pick<Journal, 'probeWrite'>, signal: AbortSignal, log: LogPort): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    await sleepUnlessAborted(retryDelayMs(attempt, PROBE_BASE_MS, PROBE_MAX_MS), signal);
    if (signal.aborted) return false;
    try {
      journal.probeWrite();
      return true;
    } catch (err) {
      if (attempt % 10 === 0) log.warn({ attempt, err: err instanceof Error ? err.message : String(err) }, 'the journal still cannot be written; waiting');
    }
  }
}
