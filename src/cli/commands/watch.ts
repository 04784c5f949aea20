/**
 * `ufdl-agent watch PK`: live transitions and progress of a job until it ends; exits 0 when it
 * finishes, 1 when it errors or is cancelled (like `submit --wait`). For a workflow, its graph and
 * each child's changes too.
 */
import type { Command } from 'commander';
import { parsePk } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { followJob, outcome } from '../follow.js';
import { describeJob, jobState } from '../job-state.js';
import { LiveView, printJson } from '../output.js';
import { WorkflowView } from '../workflow-view.js';

interface WatchFlags extends ConnectFlags {
  json?: boolean;
}

export function registerWatch(program: Command): void {
  connectFlags(
    program
      .command('watch')
      .description('Follow a job until it ends; exit 0 when it finishes, 1 when it errors or is cancelled')
      .argument('<pk>', 'job pk')
      .option('--json', 'print the ended job as JSON (live lines go to stderr)'),
  ).action(async (rawPk: string, flags: WatchFlags) => {
    const pk = parsePk(rawPk, 'job pk');
    await withSession(flags, async ({ client }) => {
      const view = new LiveView(flags.json ? process.stderr : process.stdout);
      // Unknown job: one line with the server's detail, before any live output.
      const job = await about(`job ${pk}`, client.getJob(pk));
      view.line(`job ${pk} (${job.template.name}@${job.template.version}): ${describeJob(job)}`);
      const workflow = await about(`job ${pk}`, WorkflowView.detect(client, job, view));
      const ended = await about(`job ${pk}`, followJob(client, pk, view, { shown: jobState(job), ...(workflow ? { workflow } : {}) }));
      if (flags.json) printJson({ ...ended, state: jobState(ended) });
      outcome(ended);
    });
  });
}
