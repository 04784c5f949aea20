/**
 * Follow one job until it ends: the web-socket watch for live transitions and progress, plus a
 * re-read of the job on a timer (fast while the socket is down, slow while it is up), so a server
 * that refuses watchers (the reference, for jobs created without web-socket notifications) or a
 * missed frame never leaves the command waiting forever. Shared by `submit --wait` and `watch`.
 */
import { ClientError, type UfdlClient } from '../client/index.js';
import type { JobJson, JobNotification } from '../protocol/wire.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { describeJob, hasEnded, jobState, oneLine, stateAfter, type JobState } from './job-state.js';
import { formatPercent, type LiveView } from './output.js';
import type { WorkflowView } from './workflow-view.js';

export interface FollowOptions {
  /** Re-read interval while the web-socket is down or refused. @default 2000 */
  pollMs?: number;
  /** Re-read interval while the web-socket is up (a safety net only). @default 10000 */
  slowPollMs?: number;
  /** The state the caller has already shown, so that it is not printed again. */
  shown?: JobState;
  /** Leave the view open when the job has ended (the caller prints more, e.g. the rest of the log). */
  keepOpen?: boolean;
  /** The job is a workflow: follow its children too (each re-read refreshes them first). */
  workflow?: WorkflowView;
}

/** Resolves with the job as last read once it has ended (finished, errored or cancelled). */
export function followJob(client: UfdlClient, pk: number, view: LiveView, options: FollowOptions = {}): Promise<JobJson> {
  const pollMs = options.pollMs ?? 2_000;
  const slowPollMs = options.slowPollMs ?? 10_000;
  return new Promise<JobJson>((resolve, reject) => {
    let settled = false;
    let shown: JobState | undefined = options.shown;
    let timer: NodeJS.Timeout | undefined;
    let reading = false;
    let rereadSoon = false;
    let unreachableSince: number | undefined;

    const finish = (outcome: { job: JobJson } | { error: unknown }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watch.close();
      if (!options.keepOpen) view.close();
      if ('job' in outcome) resolve(outcome.job);
      else reject(outcome.error);
    };

    const show = (state: JobState, text: string) => {
      if (state === shown && state === 'running') return;
      shown = state;
      view.line(`job ${pk}: ${text}`);
    };

    const onMessage = (message: JobNotification) => {
      if (settled) return;
      if (options.workflow) {
        onWorkflowMessage(message);
        return;
      }
      const state = stateAfter(message.transition, message.cancelled);
      if (message.transition === 'progress') {
        if (shown !== 'running') show('running', 'running');
        view.progress(pk, message.progress, 'running');
        return;
      }
      const node = message.node === undefined ? '' : ` (node ${message.node})`;
      const error = message.error === undefined ? '' : `: ${message.error}`;
      show(state, `${message.transition}${node}${error}`);
      // Confirm from the job itself: a notification may be a catch-up or a step in a reset.
      if (hasEnded(state)) void reread();
    };

    /**
     * A workflow's frames say which child moved (`transition_data.child`): progress redraws the bar;
     * anything else re-reads the workflow, which prints the children's changes before the parent's.
     */
    const onWorkflowMessage = (message: JobNotification) => {
      const data = message.transition_data;
      if (message.transition === 'progress' && (data.child_transition === undefined || data.child_transition === 'progress')) {
        const child = typeof data.child === 'string' && typeof data.progress === 'number' ? `${data.child} ${formatPercent(data.progress)}` : undefined;
        view.progress(pk, message.progress, 'running', child);
        return;
      }
      void reread();
    };

    const reread = async () => {
      if (settled) return;
      if (reading) {
        rereadSoon = true;
        return;
      }
      reading = true;
      try {
        const job = options.workflow ? await options.workflow.refresh() : await client.getJob(pk);
        unreachableSince = undefined;
        const state = jobState(job);
        if (state !== shown) show(state, describeJob(job));
        if (hasEnded(state)) finish({ job });
      } catch (err) {
        if (err instanceof ClientError && err.transient) {
          // The server may come back: keep trying, and say so once.
          if (unreachableSince === undefined) {
            unreachableSince = Date.now();
            view.line(`job ${pk}: cannot reach the server (${err.detail}); still trying`);
          }
        } else {
          finish({ error: err });
        }
      } finally {
        reading = false;
      }
      if (rereadSoon && !settled) {
        rereadSoon = false;
        void reread();
      }
    };

    const tick = () => {
      if (settled) return;
      void reread().finally(() => {
        if (!settled) timer = setTimeout(tick, watch.connected ? slowPollMs : pollMs);
      });
    };

    // Say once whether updates are live or polled; the re-read timer covers a refused socket.
    let announced = false;
    const watch = client.watchJob(pk, onMessage, {
      onOpen: () => {
        if (announced || settled) return;
        announced = true;
        view.line(`job ${pk}: watching (live updates)`);
      },
      onError: (error) => {
        if (announced || settled || (error.kind !== 'refused' && error.kind !== 'auth')) return;
        announced = true;
        view.line(`job ${pk}: no live updates (${error.message}); re-reading the job every ${pollMs / 1000} s`);
      },
      reconnectBaseDelayMs: 500,
      reconnectMaxDelayMs: 10_000,
    });
    tick();
  });
}

/**
 * The outcome of a followed job as the command's result: nothing for a finished job (exit 0), a
 * one-line failure with status 1 for an errored or cancelled one.
 */
export function outcome(job: JobJson): void {
  const state = jobState(job);
  if (state === 'finished') return;
  if (state === 'errored') throw new CliError(EXIT.FAILURE, `job ${job.pk} errored: ${oneLine(job.error_reason ?? '(no reason given)')}`);
  throw new CliError(EXIT.FAILURE, `job ${job.pk} was cancelled`);
}
