/**
 * Start-up recovery (DESIGN §5, launcher.md §4.2 A), before the first poll: every unfinished journal
 * entry is reconciled with the server — re-read the job first, learn what became of the child, decide
 * with the pure table of `recovery-rules.ts`, then act. Jobs that continue (a child still running, one
 * whose exit status is known, uploads or a finish still owed) get a {@link JobRunner} in their slot
 * and go on in the background; the others are settled here. Finally each node's server-side
 * `current_job` that the journal does not know gets the reference rule (finish with an error, reset,
 * release).
 */
import { isClientError } from '../../client/errors.js';
import type { JobJson, NodeJson, TemplateJson } from '../../protocol/wire.js';
import { attach, findWrapper } from '../child/attach.js';
import { jobDirPaths, removeJobDir, type JobDir } from '../child/job-dir.js';
import { fencedByWrapper } from '../child/lease.js';
import type { RunningChild } from '../child/running-child.js';
import { stopGroup } from '../child/stop-group.js';
import { readExitStatus, type ExitResult } from '../child/wrapper.js';
import { childStartIdentity, startTicksOf } from '../child/identity.js';
import { FENCED_ERROR } from '../job/finish.js';
import type { ServerCallContext } from '../job/context.js';
import { deliverFinish, releaseUnstarted, resetAndRelease } from '../job/server-calls.js';
import { runSettingsOf, type RunSettings } from '../executors/types.js';
import type { JobRunner } from '../job/runner.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { JobRecord } from '../journal/records.js';
import { isJobEdge } from '../journal/states.js';
import type { ExecutorPort, JournalPort, LogPort, NodeApi } from '../ports.js';
import { decideRecovery, decideUnknownCurrentJob, NODE_RESTARTED_ERROR, type ChildFate, type RecoveryAction } from './recovery-rules.js';
import type { SlotSpec } from '../slots/slots.js';
import { retryStartupStep } from './wait-for-server.js';

/** Finish errors that mean "run it again elsewhere": a re-delivered finish with one is followed by reset and release. */
export const REQUEUE_ERROR_PREFIXES = [
  'The node is shutting down',
  'The node lost contact with the server',
  NODE_RESTARTED_ERROR,
] as const;

export function isRequeueError(error: string | null): boolean {
  return error !== null && REQUEUE_ERROR_PREFIXES.some((p) => error.startsWith(p)) && !error.includes('Not retried');
}

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
  executor: ExecutorPort;
  /** `errorBackoffS`: the back-off while the server cannot be reached during recovery. */
  options: Pick<ResolvedAgentOptions, 'serverUrl' | 'workDir' | 'errorBackoffS' | 'maxRestarts' | 'killGraceMs'>;
  log: LogPort;
  /** Claim the slot and build a runner that continues the job in the background. */
  adoptRunner(jobPk: number, slot: SlotSpec, api: NodeApi): JobRunner;
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

/** A job's child as recovery finds it. */
interface ChildFacts {
  fate: ChildFate;
  child: RunningChild | undefined;
  exit: ExitResult | undefined;
}

function recordedExit(record: JobRecord): ExitResult | undefined {
  if (record.exitCode === null && record.exitSignal === null) return undefined;
  return { code: record.exitCode, signal: record.exitSignal as NodeJS.Signals | null, source: 'wrapper' };
}

async function childFacts(record: JobRecord, dir: JobDir): Promise<ChildFacts> {
  const known = recordedExit(record);
  if (known) return { fate: 'exited', child: undefined, exit: known };
  let pid = record.pid;
  let ticks = startTicksOf(record.pidStart);
  if (pid === null && (record.state === 'starting' || record.state === 'running')) {
    // Spawned but never journalled? Look for its wrapper.
    const found = findWrapper(dir);
    if (found !== undefined) {
      pid = found.pid;
      ticks = found.startTime;
    }
  }
  if (pid !== null && ticks !== undefined) {
    const child = attach(pid, ticks, dir);
    if (child) return { fate: 'alive', child, exit: undefined };
  }
  const exit = await readExitStatus(dir);
  if (exit) return { fate: 'exited', child: undefined, exit };
  return { fate: pid === null ? 'none' : 'gone', child: undefined, exit: undefined };
}

export async function recover(deps: RecoveryDeps): Promise<RecoveryReport> {
  const report: RecoveryReport = { settled: [], continuing: [], unknownCurrent: [] };
  const { journal, log } = deps;
  const entries = journal.unfinished();
  if (entries.length > 0) log.info({ jobs: entries.map((e) => ({ job: e.jobPk, state: e.state })) }, 'recovering unfinished jobs from the journal');
  const taken = new Set<number>();

  for (const record of entries) {
    if (deps.signal.aborted) break;
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
    const dir = jobDirPaths(deps.options.workDir, record.jobPk);
    const facts = await childFacts(record, dir);
    const currentJob = slot && slot.node.pk === record.nodePk ? slot.node.current_job : job?.pk ?? null;
    const action = decideRecovery({
      state: record.state,
      child: facts.fate,
      job,
      selfPk: record.nodePk,
      currentJob,
      restarts: record.restarts,
      maxRestarts: deps.options.maxRestarts,
      hasFinishPayload: record.finish !== null,
    });
    log.info({ job: record.jobPk, state: record.state, child: facts.fate, action: action.kind, reason: action.reason }, 'recovery decision');
    deps.onAction?.(record.jobPk, action.kind);

    const ctx: ServerCallContext = { jobPk: record.jobPk, api, journal, log, signal: deps.signal };
    const settle = () => report.settled.push({ jobPk: record.jobPk, action: action.kind, reason: action.reason });
    const continueIn = async (start: (runner: JobRunner) => Promise<unknown>) => {
      if (!slot) {
        // No slot for it (fewer slots than before): settle what we can without a runner.
        log.warn({ job: record.jobPk }, 'no slot left for a recovered job; reporting it as interrupted');
        await requeueOffTheBooks(ctx, record, NODE_RESTARTED_ERROR);
        settle();
        return;
      }
      taken.add(slot.spec.index);
      const runner = deps.adoptRunner(record.jobPk, slot.spec, api);
      void start(runner);
      report.continuing.push({ jobPk: record.jobPk, action: action.kind, runner });
    };

    switch (action.kind) {
      case 'forget':
        if (action.stopChild && facts.child) await stopGroup(facts.child.pid, { graceMs: deps.options.killGraceMs });
        journal.abandon(record.jobPk, `recovery: ${action.reason}`);
        await removeJobDir(dir).catch(() => {});
        settle();
        break;
      case 'release':
        if (isJobEdge(record.state, 'releasing')) {
          journal.transition(record.jobPk, 'releasing');
          if (await releaseUnstarted(ctx)) journal.transition(record.jobPk, 'done');
        } else {
          await resetAndRelease(ctx);
          journal.abandon(record.jobPk, `recovery: ${action.reason}`);
        }
        await removeJobDir(dir).catch(() => {});
        settle();
        break;
      case 'reattach': {
        const template = await readTemplate(api, job!, deps);
        const settings = settingsAgain(deps, api, job!, template, dir);
        const child = facts.child!;
        // Spawned but never journalled as running: record the child found by its wrapper first.
        if (record.state === 'starting') journal.transition(record.jobPk, 'running', { pid: child.pid, pidStart: childStartIdentity(child.startTime) });
        await continueIn((r) => r.resumeRunning(child, settings));
        break;
      }
      case 'collect': {
        if (fencedByWrapper(dir)) {
          // Its wrapper stopped it when the lease lapsed (the agent was down too long): the server
          // has given, or will give, the job to another node; report nothing of this run.
          if (record.state === 'starting') journal.transition(record.jobPk, 'running', { pid: record.pid });
          await continueIn((r) => r.resumeFail(FENCED_ERROR, true));
          break;
        }
        const template = await readTemplate(api, job!, deps);
        const settings = settingsAgain(deps, api, job!, template, dir);
        // Never run again a job whose exit status is known: report it, from `starting` too.
        if (record.state === 'starting') journal.transition(record.jobPk, 'running', { pid: record.pid });
        await continueIn((r) => r.resumeCollect(facts.exit!, settings.outputTypes));
        break;
      }
      case 'resume-upload':
        await continueIn((r) => r.resumeUpload(facts.exit ?? { code: null, signal: null, source: 'lost' }));
        break;
      case 'refinish':
        await continueIn((r) => r.resumeFinish(record.finish!.error, isRequeueError(record.finish!.error)));
        break;
      case 'requeue':
      case 'fail': {
        journal.noteRestart(record.jobPk);
        if (isJobEdge(record.state, 'finishing')) {
          await continueIn((r) => r.resumeFail(action.error, action.kind === 'requeue'));
        } else {
          await requeueOffTheBooks(ctx, record, action.error, action.kind === 'requeue');
          settle();
        }
        break;
      }
      case 'cleanup':
        await continueIn((r) => r.resumeCleanup(action.stopChild ? facts.child : undefined, record.state));
        break;
      case 'rerelease':
        if (record.state === 'finishing' || record.state === 'releasing') {
          const requeue = record.state === 'releasing' || isRequeueError(record.finish?.error ?? null);
          await continueIn((r) => r.resumeRelease(record.state as 'finishing' | 'releasing', requeue));
        } else {
          await resetAndRelease(ctx);
          journal.abandon(record.jobPk, `recovery: ${action.reason}`);
          settle();
        }
        break;
    }
  }

  // current_job of each node that the journal does not know: the reference rule.
  const known = new Set(journal.unfinished().map((r) => r.jobPk));
  for (const c of report.continuing) known.add(c.jobPk);
  for (const slot of deps.slots) {
    const unknown = decideUnknownCurrentJob(slot.node.current_job, known);
    if (unknown === null || deps.signal.aborted) continue;
    log.warn({ job: unknown, node: slot.node.pk }, 'the server says this node works a job the journal does not know; applying the reference rule (finish with an error, reset, release)');
    report.unknownCurrent.push(unknown);
    const ctx: ServerCallContext = { jobPk: unknown, api: slot.api, journal, log, signal: deps.signal };
    const finished = await deliverFinish(ctx, NODE_RESTARTED_ERROR);
    if (finished.delivered && finished.job?.error_reason === NODE_RESTARTED_ERROR) await resetAndRelease(ctx);
    slot.node = { ...slot.node, current_job: null };
  }
  return report;
}

/** The slot the job ran in (by index, else by node pk), if free. */
function pickSlot(slots: readonly RecoverySlot[], record: JobRecord, taken: ReadonlySet<number>): RecoverySlot | undefined {
  const byNode = slots.find((s) => s.node.pk === record.nodePk && !taken.has(s.spec.index));
  if (byNode) return byNode;
  const byIndex = slots.find((s) => s.spec.index === record.slot && !taken.has(s.spec.index));
  return byIndex ?? slots.find((s) => !taken.has(s.spec.index));
}

async function readTemplate(api: NodeApi, job: JobJson, deps: RecoveryDeps): Promise<TemplateJson | undefined> {
  try {
    return await api.getTemplate(job.template.pk, { signal: deps.signal });
  } catch (err) {
    deps.log.warn({ job: job.pk, err: String(err) }, 'could not read the template of a recovered job');
    return undefined;
  }
}

/**
 * The executor settings of a recovered job (time limit, progress regex, output types), by preparing
 * it again: `prepare` is pure, so nothing is written or run. Defaults when that fails.
 */
function settingsAgain(deps: RecoveryDeps, api: NodeApi, job: JobJson, template: TemplateJson | undefined, dir: JobDir): RunSettings {
  const fallback: RunSettings = { timeLimitMs: undefined, progressRegex: undefined, outputTypes: {} };
  const executor = template ? deps.executor.executorFor(template.executor_class) : undefined;
  if (!template || !executor) return fallback;
  try {
    return runSettingsOf(executor.prepare(job, template, { dir, gpu: null, serverUrl: deps.options.serverUrl, nodePk: api.nodePk ?? 0 }));
  } catch (err) {
    deps.log.warn({ job: job.pk, err: String(err) }, 'could not prepare a recovered job again; using default settings');
    return fallback;
  }
}

/**
 * Finish with an error and (optionally) reset + release a job whose journal state has no edge to
 * `finishing`, then close the entry.
 */
async function requeueOffTheBooks(ctx: ServerCallContext, record: JobRecord, error: string, requeue = true): Promise<void> {
  const finished = await deliverFinish(ctx, error);
  if (finished.delivered && requeue) await resetAndRelease(ctx);
  ctx.journal.abandon(record.jobPk, `recovery: ${error}`);
}
