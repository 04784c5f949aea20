/**
 * The journal's two lifecycles: a job's (docs/ARCHITECTURE.md, "The journal") and an output upload's. Each is a string-literal
 * union, documented state by state, with the edges it allows. `Journal.transition()` and
 * `Journal.markOutput()` check an edge inside the same transaction that writes it.
 *
 * The write-ahead rule decides what a state means: a state whose name is a verb in `-ing` is an
 * **intent** — it is committed *before* the HTTP call (or local step) it names, so after a crash the
 * agent knows the call may or may not have reached the server and must re-read the job before acting.
 * The state after it is the **result**, committed once the call has answered.
 */

/** Where this node stands with one job. */
export type JobState =
  /**
   * Intent: `GET /v1/jobs/{pk}/acquire` is about to be (or was) sent. Recovery: re-read the job; if
   * `job.node` is this node and it has not started, release it, else forget it (→ done).
   */
  | 'acquiring'
  /**
   * Result: acquire answered 200. The agent re-reads the job and proceeds only if `job.node` is
   * itself (the reference acquire is not atomic). Recovery: release.
   */
  | 'acquired'
  /**
   * Intent: local preparation before start — job directory, `JobOutput` input downloads, executor
   * checks. A failure here releases the job so another node can run it (a local problem is not the job's).
   * Recovery: release.
   */
  | 'preparing'
  /**
   * Intent: `POST /v1/jobs/{pk}/start` is about to be sent, then the child is spawned. Recovery: if
   * the server shows the job started by this node, treat it as running (no child → finish with an
   * error); otherwise release.
   */
  | 'starting'
  /**
   * Result: the server started the job and the child was spawned; `pid` and `pidStart` are set.
   * Progress and cancel checks happen here; the exit status is recorded here once known, and so is
   * the finish decision of a stop by the agent itself (shutdown, fencing: requeue) as the stop begins.
   * Recovery: deliver such a decision (stopping a child that outlived the agent); else re-attach to
   * the child if the same pid and start time still run, collect a recorded exit, or finish with an
   * error (capped by `restarts`).
   */
  | 'running'
  /**
   * Intent: the child has exited (exit status recorded) and its outputs are registered; uploads
   * are in progress, each output tracked by its own upload state. Recovery: upload what is not
   * `uploaded` (a 400 "already has output" counts as uploaded only when the server's copy holds this
   * attempt's bytes; any other copy is removed and ours uploaded), then finish — unless the agent had
   * stopped the child (shutdown: only the log goes up) and journalled its requeue: deliver that.
   */
  | 'uploading'
  /**
   * Intent: `POST /v1/jobs/{pk}/finish` with the decided payload (`finish`) is about to be sent.
   * Recovery: re-read the job; send finish again unless the server shows it ended, cancelled or
   * re-assigned.
   */
  | 'finishing'
  /**
   * Intent: give the job back to the queue — `DELETE …/reset` when it was finished with an error,
   * then `DELETE …/release`. Recovery: re-read the job and repeat whichever is still needed.
   */
  | 'releasing'
  /**
   * Terminal: nothing more is owed to the server for this attempt. A later acquire of the same job
   * re-uses the row as a new attempt.
   */
  | 'done';

/** Every job state, in lifecycle order. */
export const JOB_STATES = [
  'acquiring',
  'acquired',
  'preparing',
  'starting',
  'running',
  'uploading',
  'finishing',
  'releasing',
  'done',
] as const satisfies readonly JobState[];

/**
 * The allowed job edges. `Journal.abandon()` is the one way around them: it moves any unfinished
 * job to `done` with a mandatory reason, for terminal bookkeeping when the server shows the job is
 * gone or no longer ours (404, aborted, re-assigned, hard-deleted). Keeping that escape hatch out of
 * this table means an ordinary `transition(pk, 'done')` from, say, `running` is still a bug that
 * throws, instead of silently skipping the uploads and the finish.
 */
export const JOB_EDGES: { readonly [S in JobState]: readonly JobState[] } = {
  acquiring: [
    // acquire answered 200 (and the re-read will confirm).
    'acquired',
    // acquire refused (406: another node holds it) or the job vanished: nothing was taken.
    'done',
    // the answer is unknown (timeout, crash before the result was written) but a re-read shows
    // this node holds it: give it back rather than run a job the loop never chose to prepare.
    'releasing',
  ],
  acquired: [
    // the re-read confirmed `job.node == self`: prepare it.
    'preparing',
    // the re-read shows it unfit, or the agent is draining: hand it back before any work.
    'releasing',
    // the re-read shows another node holds it (the reference acquire is not atomic and we lost
    // the race) or it was cancelled: there is nothing of ours to release.
    'done',
  ],
  preparing: [
    // inputs are in place: start it.
    'starting',
    // preparation failed (download, executor check, disk): release so another node can run it,
    // never fail the job for a local problem.
    'releasing',
  ],
  starting: [
    // start answered 200 and the child is spawned.
    'running',
    // start refused (406: not CREATED any more, node busy) or never reached the server: not ours
    // to finish, give it back.
    'releasing',
    // the server started it but the child could not be spawned (or the agent died in between):
    // the job must be finished with an error, it cannot be released while `current_job` is set.
    'finishing',
  ],
  running: [
    // the child exited and left outputs (the log at least): upload them.
    'uploading',
    // nothing to upload (e.g. cancelled, fenced, or the log could not be produced): finish now.
    'finishing',
  ],
  uploading: [
    // every output is uploaded or has failed for good; the finish payload is decided.
    'finishing',
  ],
  finishing: [
    // finish delivered (or the server already shows the job ended, cancelled, re-assigned).
    'done',
    // finished with an error on purpose so it runs again (shutdown, restart within the cap):
    // reset and release come next.
    'releasing',
  ],
  releasing: [
    // reset/release answered, or the server shows the job is no longer ours.
    'done',
  ],
  done: [],
};

/** True when `from → to` is an edge of {@link JOB_EDGES}. */
export function isJobEdge(from: JobState, to: JobState): boolean {
  // `?.`: a row read from disk may hold a state this version does not know; that is no edge.
  return JOB_EDGES[from]?.includes(to) ?? false;
}

export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

/** Where one output of a job stands with its upload. */
export type OutputState =
  /** Registered (name, type, path; size and sha256 usually not yet known); no upload tried yet. */
  | 'pending'
  /**
   * Intent: an upload of (name, type) is about to be (or was) sent; what it sent is not recorded.
   * Recovery: upload again; a 400 "already has output" counts as uploaded only when the server's copy
   * is live and holds this attempt's bytes (the local file is hashed to know them), else that copy is
   * removed and ours uploaded (`outputs/server-copy.ts`).
   */
  | 'uploading'
  /** Terminal: the server acknowledged the upload; size and sha256 are those of the bytes it got. */
  | 'uploaded'
  /** The last upload failed (its error is kept); it may be tried again. */
  | 'failed';

export const OUTPUT_STATES = ['pending', 'uploading', 'uploaded', 'failed'] as const satisfies readonly OutputState[];

export const OUTPUT_EDGES: { readonly [S in OutputState]: readonly OutputState[] } = {
  pending: ['uploading'],
  // `uploading → uploading` is a retry after a crash or timeout left the outcome unknown: the
  // intent is written again (and `attempts` counts it) before the new request.
  uploading: ['uploaded', 'failed', 'uploading'],
  uploaded: [],
  failed: ['uploading'],
};

export function isOutputEdge(from: OutputState, to: OutputState): boolean {
  return OUTPUT_EDGES[from]?.includes(to) ?? false;
}

export function isOutputState(value: unknown): value is OutputState {
  return typeof value === 'string' && (OUTPUT_STATES as readonly string[]).includes(value);
}
