/**
 * `ufdl-agent jobs [--state S] [--parent PK] [--limit N] [--json]`: the newest jobs as a table — pk,
 * template, state, node, progress (when the server tells it), age, and why a created job waits (when
 * nodes that skipped it told the server). A workflow's children are listed under it
 * (`└ node: template`), or, when it is not in the list, with its pk (`12/train: …`).
 */
import type { Command } from 'commander';
import type { FilterSpec } from '../../protocol/filter.js';
import type { JobJson } from '../../protocol/wire.js';
import { parseCount, parsePk, usageError } from '../cli-error.js';
import { connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { JOB_STATES, jobState, stateFilter, waitingNote, type JobState } from '../job-state.js';
import { formatAge, formatPercent, printJson, printTable } from '../output.js';
import { childNodeName } from '../workflow-view.js';

interface JobsFlags extends ConnectFlags {
  state?: string;
  parent?: string;
  limit: string;
  json?: boolean;
}

export function registerJobs(program: Command): void {
  connectFlags(
    program
      .command('jobs')
      .description("List jobs, newest first: pk, template, state, node, progress, age; a workflow's children under it")
      .option('-s, --state <state>', `only jobs in this state: ${JOB_STATES.join(', ')}`)
      .option('-p, --parent <pk>', "only the children of this workflow job")
      .option('-n, --limit <n>', 'at most this many jobs (0: all)', '50')
      .option('--json', 'print JSON (the jobs as the server sends them, plus "state")'),
  ).action(async (flags: JobsFlags) => {
    const limit = parseCount(flags.limit, '--limit');
    const parent = flags.parent === undefined ? undefined : parsePk(flags.parent, '--parent');
    let state: JobState | undefined;
    if (flags.state !== undefined) {
      state = flags.state.trim().toLowerCase() as JobState;
      if (!JOB_STATES.includes(state)) throw usageError(`--state must be one of ${JOB_STATES.join(', ')}, got ${JSON.stringify(flags.state)}`);
    }
    await withSession(flags, async ({ client }) => {
      const filter: FilterSpec = { order_by: [{ field: 'pk', ascending: false }] };
      const expressions = [...(state === undefined ? [] : stateFilter(state)), ...(parent === undefined ? [] : [{ type: 'exact', field: 'parent', value: parent } as const])];
      if (expressions.length > 0) filter.expressions = expressions;
      // Ordered and filtered again here: the server's filter is a superset, and order is not promised.
      const select = (all: JobJson[]) =>
        all.filter((job) => (state === undefined || jobState(job) === state) && (parent === undefined || job.parent === parent)).sort((a, b) => b.pk - a.pk);
      // Only the newest `limit` are asked for (a site keeps a million ended jobs); should the
      // filtering here leave fewer while the server had more, the whole list is asked for.
      const head = await client.listJobs(filter, limit > 0 ? { limit } : {});
      let jobs = select(head);
      if (limit > 0 && jobs.length < limit && head.length === limit) jobs = select(await client.listJobs(filter));
      if (limit > 0) jobs = jobs.slice(0, limit);
      if (flags.json) {
        printJson(jobs.map((job) => ({ ...job, state: jobState(job) })));
        return;
      }
      if (jobs.length === 0) {
        process.stderr.write(state === undefined ? 'no jobs\n' : `no ${state} jobs\n`);
        return;
      }
      const now = Date.now();
      const listed = new Set(jobs.map((job) => job.pk));
      const rows = asTree(jobs);
      // Why created jobs wait, when nodes told the server (a column only when there is something to say).
      const notes = rows.map((job) => waitingNote(job));
      const withNotes = notes.some((n) => n !== undefined);
      printTable(
        [
          { title: 'pk', align: 'right' },
          { title: 'template' },
          { title: 'state' },
          { title: 'node', align: 'right' },
          { title: 'progress', align: 'right' },
          { title: 'age', align: 'right' },
          ...(withNotes ? [{ title: 'waiting because' }] : []),
        ],
        rows.map((job, i) => [
          String(job.pk),
          templateCell(job, listed),
          jobState(job),
          job.node === null ? '-' : String(job.node),
          progressOf(job),
          formatAge(job.creation_time, now),
          ...(withNotes ? [shorten(notes[i] ?? '', 100)] : []),
        ]),
      );
    });
  });
}

function shorten(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** Newest first, each workflow's children right after it, oldest child first. */
function asTree(jobs: readonly JobJson[]): JobJson[] {
  const listed = new Set(jobs.map((job) => job.pk));
  const root = (job: JobJson) => (job.parent !== null && listed.has(job.parent) ? job.parent : job.pk);
  const isChild = (job: JobJson) => (root(job) === job.pk ? 0 : 1);
  return [...jobs].sort((a, b) => root(b) - root(a) || isChild(a) - isChild(b) || a.pk - b.pk);
}

/** `train-epochs@1`; a child: `└ train: train-epochs@1` under its listed parent, else `12/train: …`. */
function templateCell(job: JobJson, listed: ReadonlySet<number>): string {
  const template = `${job.template.name}@${job.template.version}`;
  if (job.parent === null) return template;
  const node = childNodeName(job);
  return listed.has(job.parent) ? `└ ${node}: ${template}` : `${job.parent}/${node}: ${template}`;
}

/**
 * The job JSON of the reference carries no progress (it is only in notifications); a server that adds
 * a numeric `progress` (or `progress_amount`) gets it shown. Ended jobs show nothing.
 */
function progressOf(job: JobJson): string {
  const state = jobState(job);
  if (state === 'finished') return '100%';
  const extra = job as unknown as { progress?: unknown; progress_amount?: unknown };
  const value = typeof extra.progress === 'number' ? extra.progress : typeof extra.progress_amount === 'number' ? extra.progress_amount : undefined;
  return value === undefined || state !== 'running' ? '-' : formatPercent(value);
}
