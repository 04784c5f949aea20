/**
 * A template's progress regex runs on every line a job prints, and V8's regex engine backtracks: a
 * pattern such as `^(?<progress>a+)+$` takes time exponential in the length of a line that nearly
 * matches (40 characters: hours), during which the agent's event loop stands still — its heartbeats,
 * leases and every other job with it, so the server fences the node. Anyone who may set the
 * parameter (a template's author, or any job's creator where the template leaves it open) could
 * freeze a node that way, by mistake or on purpose.
 *
 * Two V8 flags bound every match: past a number of backtracks in one match, V8 runs that match again
 * on its linear-time engine, with the same result (`--enable-experimental-regexp-engine-on-excessive-
 * backtracks`; ordinary patterns never reach the threshold and keep the fast engine, since the
 * linear one is two orders of magnitude slower on a long line). The linear engine cannot run
 * back-references and look-arounds, so a pattern with those would stay unbounded: it is refused
 * (`--enable-experimental-regexp-engine` lets the `l` flag tell which patterns it can run).
 *
 * The flags are set the first time a progress regex is compiled, not when the process starts: a V8
 * flag set at run time changes the hash that node's built-in code cache is checked against, which
 * the short CLI commands would pay for at every start; only the agent compiles progress regexes.
 */
import { setFlagsFromString } from 'node:v8';

/** Whether the linear-time engine answers the `l` flag: undefined until the flags are set. */
let linearEngine: boolean | undefined;

function enableBoundedMatching(): boolean {
  if (linearEngine !== undefined) return linearEngine;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  // A V8 without the engine (a future Node may drop the experiment) would refuse every pattern's `l`
  // flag: then patterns are taken as they are, unbounded, rather than all refused.
  try {
    new RegExp('a', 'l');
    linearEngine = true;
  } catch {
    linearEngine = false;
  }
  return linearEngine;
}

/** A pattern whose matches no flag bounds (see {@link compileBoundedRegExp}). */
export type UnboundedPattern = 'unbounded';

/**
 * Compile `source` (no flags) so that no match can take more than linear time in the line's length.
 * @throws SyntaxError when `source` is not a regular expression
 * @returns `'unbounded'` when it is one the linear-time engine cannot run (back-references,
 *   look-arounds), whose matches no flag bounds
 */
export function compileBoundedRegExp(source: string): RegExp | UnboundedPattern {
  const bounded = enableBoundedMatching();
  const regex = new RegExp(source);
  if (!bounded) return regex;
  try {
    new RegExp(source, 'l');
  } catch {
    return 'unbounded';
  }
  return regex;
}
