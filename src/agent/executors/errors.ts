/**
 * Errors raised while turning a job and its template into a child process. They are the job's fault
 * (or its template's), not the node's: the job loop fails the job with the message and moves on, and
 * never lets one bad job block the queue.
 *
 * The codes follow the `UFDL_ERR_<AREA>_<WHAT>` scheme of `src/protocol/errors.ts`. They never reach
 * the wire as HTTP statuses (the agent is a client), so they live here rather than in that registry.
 */

/** Stable codes a caller may branch on. */
export type PrepareErrorCode =
  /** A template parameter has no value in the job and no default in the template. */
  | 'UFDL_ERR_AGENT_PARAM_MISSING'
  /** A parameter value has the wrong shape for its use (a flag that is not a boolean, a bad regex, …). */
  | 'UFDL_ERR_AGENT_PARAM_BAD'
  /** A `${+name:…}` / `${-name:…}` flag names neither a parameter nor an input. */
  | 'UFDL_ERR_AGENT_PARAM_UNKNOWN'
  /** A `Shell` script places `${name}` where a value could run as code (single quotes, `eval`, `sh -c`, …). */
  | 'UFDL_ERR_AGENT_PARAM_UNSAFE'
  /** The template names an executor class this node does not ship or cannot run. */
  | 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN';

/** A job cannot be prepared; `message` is written for the job's `error_reason`. */
export class PrepareError extends Error {
  readonly code: PrepareErrorCode;
  /** The parameter (or executor class) the error is about, when there is one. */
  readonly subject: string | undefined;

  constructor(code: PrepareErrorCode, message: string, options?: { subject?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PrepareError';
    this.code = code;
    this.subject = options?.subject;
  }
}
