/**
 * `ufdl-agent cancel PK`: cancel a job (admin). A finished or cancelled job is left as it is.
 */
import type { Command } from 'commander';
import { parsePk } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { describeJob, jobState } from '../job-state.js';
import { printJson } from '../output.js';

interface CancelFlags extends ConnectFlags {
  json?: boolean;
}

export function registerCancel(program: Command): void {
  connectFlags(
    program
      .command('cancel')
      .description('Cancel a job (its creator or an admin; on the reference, admins only); a finished or cancelled job is left as it is')
      .argument('<pk>', 'job pk')
      .option('--json', 'print the job as JSON'),
  ).action(async (rawPk: string, flags: CancelFlags) => {
    const pk = parsePk(rawPk, 'job pk');
    await withSession(flags, async ({ client }) => {
      const before = await about(`job ${pk}`, client.getJob(pk));
      // An errored job can still be cancelled (a node could otherwise reset and run it again).
      const state = jobState(before);
      const ended = state === 'finished' || state === 'cancelled';
      const job = ended ? before : await about(`job ${pk}`, client.cancelJob(pk));
      if (flags.json) {
        printJson({ ...job, state: jobState(job) });
        return;
      }
      process.stdout.write(ended ? `job ${pk} has already ended (${describeJob(job)}); nothing to cancel\n` : `job ${pk}: ${describeJob(job)}\n`);
    });
  });
}
