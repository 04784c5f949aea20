/**
 * The words for how a job ended: the `error` of its finish call, quoting the tail of its log so that
 * the person reading `error_reason` sees why without downloading anything.
 */
import type { JobDir } from './job-dir.js';
import type { StopReason, SupervisedExit } from './supervisor.js';
import { tailLines } from './tail.js';
import { isSuccess, type ExitResult } from './wrapper.js';
import { storableText } from '../../protocol/storable-text.js';

/** Options of {@link finishErrorText}. */
export interface FinishErrorOptions {
  /**
   * Lines of the log to quote.
   * @default 50
   */
  lines?: number;
  /** The time limit that applied, to name it when it was exceeded. */
  timeLimitMs?: number | undefined;
}

/** Whether a supervised child counts as a successful job: exit 0 and not stopped by the agent. */
export function succeeded(result: SupervisedExit): boolean {
  return result.stopReason === undefined && isSuccess(result.exit);
}

/** One line on how the command ended, e.g. `the command exited with status 3`. */
export function describeExit(exit: ExitResult): string {
  if (exit.signal) return `the command was killed by ${exit.signal}`;
  if (exit.code !== null) return `the command exited with status ${exit.code}`;
  return 'the command ended without recording an exit status (the agent was not running when it ended)';
}

const STOP_TEXT: Record<StopReason, (options: FinishErrorOptions) => string> = {
  'time-limit': (o) =>
    o.timeLimitMs === undefined ? 'Time limit exceeded' : `Time limit of ${o.timeLimitMs / 1000} s exceeded`,
  cancelled: () => 'Job was cancelled',
  shutdown: () => 'The node is shutting down',
  fenced: () => 'The node lost contact with the server and stopped the job',
};

/**
 * The finish error for a job, or `undefined` when it succeeded: the reason on the first line, then
 * the last lines of the child's output (stdout and stderr as they were printed).
 */
export async function finishErrorText(
  result: SupervisedExit,
  dir: JobDir,
  options: FinishErrorOptions = {},
): Promise<string | undefined> {
  if (succeeded(result)) return undefined;
  const lines = options.lines ?? 50;
  // What the work outside the group said (a container out of memory, an image not found) comes
  // first: it is the cause, the exit status only its consequence.
  const explanation = result.stopReason === undefined ? result.outside?.explanation : undefined;
  const head = result.stopReason
    ? `${STOP_TEXT[result.stopReason](options)}; ${describeExit(result.exit)}`
    : explanation !== undefined
      ? `${explanation}; ${describeExit(result.exit)}`
      : capitalise(describeExit(result.exit));
  const parts = [head];
  const tail = await tailLines(dir.consolePath, lines);
  if (tail.length > 0) parts.push(`--- last ${tail.length} lines of the output ---`, ...tail);
  // A child may print NUL bytes, and a cut line may split a surrogate pair; the server refuses such
  // text, and a finish it refuses would leave the job running. Journalled as the client sends it.
  return storableText(parts.join('\n'));
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
