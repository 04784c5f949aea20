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

/**
 * Why this node cannot run any job of a template, judged from the template alone: the sentence the
 * server is told (the job's waiting reason) and the agent code the log line carries.
 */
export interface TemplateRefusal {
  readonly code: PrepareErrorCode;
  readonly reason: string;
}

/** A {@link TemplateRefusal}. */
export function refusal(code: PrepareErrorCode, reason: string): TemplateRefusal {
  return { code, reason };
}

/**
 * What a template check ran into while reading the template's defaults (a default no job could use),
 * as a refusal: a {@link PrepareError} keeps its code; anything else is a bad value too.
 */
export function refusalFrom(err: unknown, prefix: string): TemplateRefusal {
  const message = err instanceof Error ? err.message : String(err);
  return refusal(err instanceof PrepareError ? err.code : 'UFDL_ERR_AGENT_PARAM_BAD', `${prefix}${message}`);
}
