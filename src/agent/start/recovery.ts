/**
 * Start-up recovery, before the first poll (docs/ARCHITECTURE.md, "Recovery"): every unfinished
 * journal entry is reconciled with the server — re-read the job first, learn what became of the child
 * (`child-facts.ts`), decide with the pure table of `recovery-rules.ts`, then act with that action's
 * handler (`recovery-actions.ts`). Jobs that continue (a child still running, one whose exit status is
 * known, uploads or a finish still owed) get a {@link JobRunner} in their slot and go on in the
 * background; the others are settled here. Finally each node's server-side `current_job` that the
 * journal does not know gets the reference rule (finish with an error, reset, release).
 */
import { isClientError } from '../../client/errors.js';
import type { NodeJson } from '../../protocol/wire.js';
import { journalledJobDir, type JobDir } from '../child/job-dir.js';
import type { ChildSpec } from '../child/running-child.js';
import { spawnJob } from '../child/spawn.js';
import type { ServerCallContext } from '../job/context.js';
import type { JobRunner } from '../job/runner.js';
import { deliverFinish, resetAndRelease } from '../job/server-calls.js';
import type { JobRecord } from '../journal/records.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { StartUpExecutorPort, JournalPort, LogPort, NodeApi } from '../ports.js';
import type { SlotSpec } from '../slots/slots.js';
import { childFacts, type ChildFacts } from './child-facts.js';
import { carryOut, type RecoveryEntry } from './recovery-actions.js';
import { decideRecovery, decideUnknownCurrentJob, NODE_RESTARTED_ERROR, type RecoveryAction } from './recovery-rules.js';
import { retryStartupStep } from './wait-for-server.js';

export interface RecoverySlot {
  spec: SlotSpec;
  api: NodeApi;
  node: NodeJson;
}

export interface RecoveryDeps {
  journal: JournalPort;
  slots: readonly RecoverySlot[];
  /** A client acting as `nodePk` for entries of a node this agent is no longer registered as. */
  apiForNode(nodePk: number): NodeApi;
  executor: StartUpExecutorPort;
  /** `errorBackoffS`: the back-off while the server cannot be reached during recovery. */
  options: Pick<ResolvedAgentOptions, 'serverUrl' | 'serverUrls' | 'workDir' | 'errorBackoffS' | 'maxRestarts' | 'killGraceMs'>;
  log: LogPort;
  /**
   * Claim the slot (or, with `beyond-plan`, a slot of the job's own that leaves when it ends) and
   * build a runner that continues the job in the background, in its directory `dir`.
   */
  adoptRunner(jobPk: number, slot: SlotSpec | 'beyond-plan', api: NodeApi, dir: JobDir): JobRunner;
  onAction?(jobPk: number, action: RecoveryAction['kind']): void;
  signal: AbortSignal;
}

export interface RecoveryReport {
  /** Entries settled here (released, forgotten, requeued…). */
  settled: { jobPk: number; action: RecoveryAction['kind']; reason: string }[];
  /** Jobs that continue in the background, with their runners. */
  continuing: { jobPk: number; action: RecoveryAction['kind']; runner: JobRunner }[];
  /** `current_job`s unknown to the journal, handled by the reference rule. */
  unknownCurrent: number[];
}

export async function recover(deps: RecoveryDeps): Promise<RecoveryReport> {
  const report: RecoveryReport = { settled: [], continuing: [], unknownCurrent: [] };
  const { journal, log } = deps;
  const entries = journal.unfinished();
  if (entries.length > 0) log.info({ jobs: entries.map((e) => ({ job: e.jobPk, state: e.state })) }, 'recovering unfinished jobs from the journal');
  // The entries of nodes the plan's slots register first, so each takes its own node's slot: taken by
  // an entry of another node (one no slot registers since a restart with fewer slots), that slot
  // would poll as its node while the server still has the node working its own job.
  const planNodes = new Set(deps.slots.map((s) => s.node.pk));
  const ordered = [...entries.filter((e) => planNodes.has(e.nodePk)), ...entries.filter((e) => !planNodes.has(e.nodePk))];
  const taken = new Set<number>();
  for (const record of ordered) {
    if (deps.signal.aborted) break;
    await recoverEntry(deps, record, taken, report);
  }
  await applyReferenceRule(deps, report);
  return report;
}

/** Re-read, look at the child, decide, act: one unfinished journal entry. */
async function recoverEntry(deps: RecoveryDeps, record: JobRecord, taken: Set<number>, report: RecoveryReport): Promise<void> {
  const { journal, log } = deps;
  const slot = pickSlot(deps.slots, record, taken);
  const api = slot && slot.node.pk === record.nodePk ? slot.api : deps.apiForNode(record.nodePk);
  // Re-read the job first, always; while the server cannot be reached, wait for it.
  const job = await retryStartupStep(
    `re-reading job ${record.jobPk}`,
    () =>
      // Read as a node this agent certainly is (the entry's node may no longer exist).
      (slot?.api ?? deps.slots[0]?.api ?? api).getJob(record.jobPk, { signal: deps.signal }).catch((err: unknown) => {
        if (isClientError(err, 'not-found')) return null;
        throw err;
      }),
    { errorBackoffS: deps.options.errorBackoffS, signal: deps.signal, log, relogin: async () => {} },
  );
  // The directory the entry recorded: `<work>/<pk>/` for an entry of a version before the per-server
  // directories, so an upgrade finds its files where they are.
  const dir = journalledJobDir(record, deps.options.workDir);
  const child = await followOutside(deps, record, dir, await childFacts(record, dir));
  const currentJob = slot && slot.node.pk === record.nodePk ? slot.node.current_job : job?.pk ?? null;
  const action = decideRecovery({
    state: record.state,
    child: child.fate,
    job,
    selfPk: record.nodePk,
    currentJob,
    restarts: record.restarts,
    maxRestarts: deps.options.maxRestarts,
    hasFinishPayload: record.finish !== null,
  });
  log.info({ job: record.jobPk, state: record.state, child: child.fate, action: action.kind, reason: action.reason }, 'recovery decision');
  deps.onAction?.(record.jobPk, action.kind);

  const calls: ServerCallContext = { jobPk: record.jobPk, api, journal, log, signal: deps.signal };
  const settle = () => report.settled.push({ jobPk: record.jobPk, action: action.kind, reason: action.reason });
  const entry: RecoveryEntry = {
    record,
    job,
    child,
    dir,
    calls,
    executor: deps.executor,
    options: deps.options,
    settle,
    continueIn: async (start) => {
      let runner: JobRunner;
      if (slot) {
        taken.add(slot.spec.index);
        runner = deps.adoptRunner(record.jobPk, slot.spec, api, dir);
      } else {
        // Fewer slots than before the restart (the configuration changed, a GPU is gone): as when the
        // plan shrinks while the agent runs, the job keeps going and its slot leaves when it ends. A
        // finished run's outputs and finish are reported, never thrown away and run again.
        log.warn({ job: record.jobPk, pid: child.child?.pid }, 'no slot of the plan is left for a recovered job; it continues in a slot that leaves when it ends');
        runner = deps.adoptRunner(record.jobPk, 'beyond-plan', api, dir);
      }
      void start(runner);
      report.continuing.push({ jobPk: record.jobPk, action: action.kind, runner });
    },
  };
  await carryOut(entry, action);
}

/**
 * A child gone without an exit status may have left its work running outside it: a container whose
 * `docker run` client died with the agent (a systemd stop kills the agent's whole cgroup, never the
 * container, which belongs to dockerd). Then a new child follows the container to its end, and
 * recovery re-attaches to that.
 */
async function followOutside(deps: RecoveryDeps, record: JobRecord, dir: JobDir, facts: ChildFacts): Promise<ChildFacts> {
  if (facts.fate !== 'gone' && facts.fate !== 'none') return facts;
  if (record.state !== 'starting' && record.state !== 'running') return facts;
  let spec: ChildSpec | undefined;
  try {
    // Under any address of the server: an entry journalled under another one was taken over under
    // the first (`aliases.ts`), but its container keeps the name and label it was started with.
    spec = await deps.executor.followOutside(deps.options.serverUrls, record.jobPk, record.attempts, dir);
  } catch (err) {
    deps.log.warn({ job: record.jobPk, err: String(err) }, "could not look for the job's container");
    return facts;
  }
  if (spec === undefined) return facts;
  try {
    const follower = await spawnJob(spec);
    deps.log.info({ job: record.jobPk, work: spec.outside?.description, pid: follower.pid }, "the job's child is gone but its container is not; following the container");
    return { fate: 'alive', child: { ...follower, origin: 'attached' }, exit: undefined };
  } catch (err) {
    deps.log.warn({ job: record.jobPk, work: spec.outside?.description, err: String(err) }, "found the job's container but could not start a child to follow it");
    return facts;
  }
}

/** Each node's `current_job` that the journal does not know: the reference rule. */
async function applyReferenceRule(deps: RecoveryDeps, report: RecoveryReport): Promise<void> {
  const { journal, log } = deps;
  const known = new Set(journal.unfinished().map((r) => r.jobPk));
  for (const c of report.continuing) known.add(c.jobPk);
  for (const slot of deps.slots) {
    const unknown = decideUnknownCurrentJob(slot.node.current_job, known);
    if (unknown === null || deps.signal.aborted) continue;
    log.warn({ job: unknown, node: slot.node.pk }, 'the server says this node works a job the journal does not know; applying the reference rule (finish with an error, reset, release)');
    report.unknownCurrent.push(unknown);
    const calls: ServerCallContext = { jobPk: unknown, api: slot.api, journal, log, signal: deps.signal };
    // Journalled as any requeue: once the finish lands the node names the job no more, and an agent
    // killed before the release would leave it ERRORED, or held by this node where no poll lists it.
    journal.beginFinish({ jobPk: unknown, nodePk: slot.node.pk, slot: slot.spec.index }, { error: NODE_RESTARTED_ERROR, requeue: true });
    const finished = await deliverFinish(calls, NODE_RESTARTED_ERROR);
    if (!finished.delivered) continue; // the agent is exiting: the journal keeps the rest for the next start
    if (finished.job?.error_reason === NODE_RESTARTED_ERROR) {
      journal.transition(unknown, 'releasing');
      if (!(await resetAndRelease(calls))) continue;
    }
    journal.transition(unknown, 'done');
    slot.node = { ...slot.node, current_job: null };
  }
}

/** The slot the job ran in (by index, else by node pk), if free. */
function pickSlot(slots: readonly RecoverySlot[], record: JobRecord, taken: ReadonlySet<number>): RecoverySlot | undefined {
  const byNode = slots.find((s) => s.node.pk === record.nodePk && !taken.has(s.spec.index));
  if (byNode) return byNode;
  const byIndex = slots.find((s) => s.spec.index === record.slot && !taken.has(s.spec.index));
  return byIndex ?? slots.find((s) => !taken.has(s.spec.index));
}
