/**
 * Named crash points for the fault tests, which kill the agent with SIGKILL at every journal state. The agent calls `failPoint(name)` at each spot below; when the environment
 * variable `UFDL_AGENT_FAIL_POINTS` names that point, the process kills itself with SIGKILL right
 * there — no cleanup, no flushing, exactly like `kill -9` or the OOM killer. Otherwise a call costs
 * one environment lookup.
 *
 * ## Naming
 *
 * `<subject>:<moment>`, where the subject is a job state of the journal (`acquiring` … `done`), an
 * output upload state prefixed `output-`, or `child` / `child-exit` / `register`, and the moment is:
 *
 * - `after-write` — the journal has just committed the write that entered this state (for an intent
 *   state: before its HTTP call was sent). **The journal fires every `…:after-write` point itself**,
 *   right after the commit, so agent code never calls these.
 * - `after-http` — the HTTP call this state announces has answered, and its result is **not yet**
 *   written: the window where the server knows more than the journal. Agent code fires these.
 * - a few named steps inside a state (`child:after-spawn`, `releasing:after-reset-http`, …),
 *   documented in {@link FAIL_POINT_DOCS}.
 *
 * ## The environment variable
 *
 * A comma-separated list of names; whitespace around names is ignored. `name#N` fires on the Nth
 * time this process reaches the point (counting from 1), e.g. `output-uploaded:after-write#2` to
 * die after the second output was recorded. Unknown names are reported by
 * {@link unknownFailPoints} (the agent logs them at start-up) and otherwise ignored.
 */
import { writeSync } from 'node:fs';

/** What each point means; the keys are the known names. */
export const FAIL_POINT_DOCS = {
  'register:after-http': 'The node was created (or patched) on the server; its pk is not yet in the journal.',
  'register:after-write': 'The node pk and identity are committed to the journal.',

  'acquiring:after-write': 'Intent to acquire committed; GET …/acquire not yet sent.',
  'acquiring:after-http': 'Acquire answered; the result (acquired / done) not yet written.',
  'acquired:after-write': 'The job is recorded as acquired; the confirming re-read not yet sent.',
  'acquired:after-http': 'The confirming re-read (GET /v1/jobs/{pk}) answered; its verdict not yet written.',
  'preparing:after-write': 'Intent to prepare committed; input downloads not yet begun.',
  'preparing:after-http': 'Input downloads done; `starting` not yet written.',
  'starting:after-write': 'Intent to start committed; POST …/start not yet sent.',
  'starting:after-http': 'Start answered 200; the child not yet spawned.',
  'child:after-spawn': 'The child is spawned; its pid and start identity not yet written (`running`).',
  'running:after-write': 'The job is recorded as running with the child pid.',
  'running:after-http': 'A progress or cancel-check call answered while running.',
  'child:after-exit': 'The child exited; its exit status not yet written.',
  'child-exit:after-write': 'The child exit status is committed (set by `transition()` or `record()`).',
  'uploading:after-write': 'Intent to upload committed; outputs registered, no upload sent.',
  'output-pending:after-write': 'An output was registered (name, type, file; its size and sha256 are learnt by the upload).',
  'output-uploading:after-write': 'Intent to upload one output committed; its POST not yet sent.',
  'output-uploading:after-http': 'One output upload answered; its result (and the size and sha256 it sent) not yet written.',
  'output-uploaded:after-write': 'One output is recorded as uploaded, with the size and sha256 of the bytes sent.',
  'output-failed:after-write': 'One output is recorded as failed.',
  'finishing:after-write': 'Intent to finish (payload decided) committed; POST …/finish not yet sent.',
  'finishing:after-http': 'Finish answered; done / releasing not yet written.',
  'releasing:after-write': 'Intent to reset and release committed; no call sent.',
  'releasing:after-reset-http': 'Reset answered; release not yet sent.',
  'releasing:after-http': 'Release answered; done not yet written.',
  'done:after-write': 'The job is recorded as done.',
} as const;

/**
 * Points armed the same way that kill nothing: the journal write there fails as the disk would make
 * it fail ({@link injectedWriteFailure}). Not in {@link FAIL_POINTS}, which the crash tests kill at.
 */
export const WRITE_FAILURE_DOCS = {
  'child-exit:write-full': 'The journal write of the child exit status fails with SQLITE_FULL and writes nothing, as when the job filled the disk.',
  'stop-decision:write-full': 'The journal write of the finish a shutdown or fencing stop decides (requeue) fails with SQLITE_FULL and writes nothing.',
} as const;

export type WriteFailurePoint = keyof typeof WRITE_FAILURE_DOCS;

/** A known fail point; a typo is a type error. */
export type FailPoint = keyof typeof FAIL_POINT_DOCS;

/** Every known fail point. */
export const FAIL_POINTS = Object.keys(FAIL_POINT_DOCS) as readonly FailPoint[];

/** The environment variable that arms fail points. */
export const FAIL_POINTS_ENV = 'UFDL_AGENT_FAIL_POINTS';

interface Armed {
  name: string;
  /** Fire on this hit (1-based). */
  hit: number;
}

/** Parse the variable's value: the armed points, and entries that are not known points. */
export function parseFailPoints(value: string | undefined): { armed: Map<FailPoint | WriteFailurePoint, number>; unknown: string[] } {
  const armed = new Map<FailPoint | WriteFailurePoint, number>();
  const unknown: string[] = [];
  for (const entry of (value ?? '').split(',')) {
    const text = entry.trim();
    if (text === '') continue;
    const parsed = parseEntry(text);
    if (parsed === null || !(isFailPoint(parsed.name) || Object.hasOwn(WRITE_FAILURE_DOCS, parsed.name))) unknown.push(text);
    else armed.set(parsed.name as FailPoint | WriteFailurePoint, parsed.hit);
  }
  return { armed, unknown };
}

function parseEntry(text: string): Armed | null {
  const match = /^([^#]+?)(?:#(\d+))?$/.exec(text);
  if (match === null) return null;
  const hit = match[2] === undefined ? 1 : Number(match[2]);
  return hit >= 1 ? { name: match[1]!, hit } : null;
}

export function isFailPoint(name: string): name is FailPoint {
  return Object.hasOwn(FAIL_POINT_DOCS, name);
}

/** Entries of `UFDL_AGENT_FAIL_POINTS` that name no known point (log them: they never fire). */
export function unknownFailPoints(env: NodeJS.ProcessEnv = process.env): string[] {
  return parseFailPoints(env[FAIL_POINTS_ENV]).unknown;
}

const hits = new Map<FailPoint | WriteFailurePoint, number>();

/**
 * Die here with SIGKILL when `UFDL_AGENT_FAIL_POINTS` arms `name` (on its Nth hit with `name#N`).
 * A line naming the point goes to stderr first (synchronously) so a test can tell which point fired.
 */
export function failPoint(name: FailPoint, env: NodeJS.ProcessEnv = process.env): void {
  const value = env[FAIL_POINTS_ENV];
  if (value === undefined || value === '') return;
  const hit = (hits.get(name) ?? 0) + 1;
  hits.set(name, hit);
  if (parseFailPoints(value).armed.get(name) !== hit) return;
  try {
    writeSync(2, `ufdl-agent: fail point ${name} (hit ${hit}): SIGKILL\n`);
  } catch {
    // stderr may be closed; die anyway.
  }
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Whether the journal write at `name` should fail now (armed in `UFDL_AGENT_FAIL_POINTS`, on its Nth
 * hit with `name#N`). Unlike {@link failPoint} nothing is killed: the caller throws the error the
 * disk would have given, inside the write's transaction, so the failure takes the real error path.
 */
export function injectedWriteFailure(name: WriteFailurePoint, env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env[FAIL_POINTS_ENV];
  if (value === undefined || value === '') return false;
  const hit = (hits.get(name) ?? 0) + 1;
  hits.set(name, hit);
  return parseFailPoints(value).armed.get(name) === hit;
}

/** Forget how often each point was reached (tests that arm `name#N` in one process). */
export function resetFailPointHits(): void {
  hits.clear();
}
