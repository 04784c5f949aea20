/**
 * `ufdl-agent jobs [--state S] [--limit N] [--json]`: the newest jobs as a table — pk, template,
 * state, node, progress (when the server tells it), age.
 */
import type { Command } from 'commander';
import type { FilterSpec } from '../../protocol/filter.js';
import type { JobJson } from '../../protocol/wire.js';
import { parseCount, usageError } from '../cli-error.js';
import { connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { JOB_STATES, jobState, stateFilter, type JobState } from '../job-state.js';
import { formatAge, formatPercent, printJson, printTable } from '../output.js';

interface JobsFlags extends ConnectFlags {
  state?: string;
  limit: string;
  json?: boolean;
}

export function registerJobs(program: Command): void {
  connectFlags(
    program
      .command('jobs')
      .description('List jobs, newest first: pk, template, state, node, progress, age')
      .option('-s, --state <state>', `only jobs in this state: ${JOB_STATES.join(', ')}`)
      .option('-n, --limit <n>', 'at most this many jobs (0: all)', '50')
      .option('--json', 'print JSON (the jobs as the server sends them, plus "state")'),
  ).action(async (flags: JobsFlags) => {
    const limit = parseCount(flags.limit, '--limit');
    let state: JobState | undefined;
    if (flags.state !== undefined) {
      state = flags.state.trim().toLowerCase() as JobState;
      if (!JOB_STATES.includes(state)) throw usageError(`--state must be one of ${JOB_STATES.join(', ')}, got ${JSON.stringify(flags.state)}`);
    }
    await withSession(flags, async ({ client }) => {
      const filter: FilterSpec = { order_by: [{ field: 'pk', ascending: false }] };
      if (state !== undefined) filter.expressions = stateFilter(state);
      // Ordered and filtered again here: the server's filter is a superset, and order is not promised.
      const select = (all: JobJson[]) => all.filter((job) => state === undefined || jobState(job) === state).sort((a, b) => b.pk - a.pk);
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
      printTable(
        [{ title: 'pk', align: 'right' }, { title: 'template' }, { title: 'state' }, { title: 'node', align: 'right' }, { title: 'progress', align: 'right' }, { title: 'age', align: 'right' }],
        jobs.map((job) => [String(job.pk), `${job.template.name}@${job.template.version}`, jobState(job), job.node === null ? '-' : String(job.node), progressOf(job), formatAge(job.creation_time, now)]),
      );
    });
  });
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
