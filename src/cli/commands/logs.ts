/**
 * `ufdl-agent logs PK [-f]`: a job's log. On a server with live logs: the log so far, or with
 * `--follow` live until the job ends (exit status as `watch`: 0 finished, 1 errored or cancelled).
 * On a server without them (the reference), the job's `log` output once the job has one; `--follow`
 * then waits for the job to end and prints that.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { UfdlClient } from '../../client/index.js';
import { CliError, parsePk } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { EXIT } from '../exit-codes.js';
import { followJob, outcome } from '../follow.js';
import { interruptible } from '../interrupt.js';
import { hasEnded, jobState } from '../job-state.js';
import { followLogTo, printLogSoFar } from '../live-log.js';
import { LiveView } from '../output.js';

interface LogsFlags extends ConnectFlags {
  follow?: boolean;
}

export function registerLogs(program: Command): void {
  connectFlags(
    program
      .command('logs')
      .description("Print a job's log; with --follow, follow it live until the job ends (exit 0 when it finishes, 1 when it errors or is cancelled)")
      .argument('<pk>', 'job pk')
      .option('-f, --follow', 'follow the log live until the job ends'),
  ).action(async (rawPk: string, flags: LogsFlags) => {
    const pk = parsePk(rawPk, 'job pk');
    await withSession(flags, async ({ client }) => {
      const job = await about(`job ${pk}`, client.getJob(pk));
      const capabilities = await client.getCapabilities();
      if (!capabilities?.extensions.live_logs) {
        await logOutputOnly(client, pk, flags.follow === true);
        return;
      }
      if (!flags.follow) {
        await about(`the log of job ${pk}`, printLogSoFar(client, pk, process.stdout));
        return;
      }
      const follow = followLogTo(client, pk, process.stdout, 0, (message) => process.stderr.write(`ufdl-agent: ${message}\n`));
      await about(`the log of job ${pk}`, follow.done);
      // The log has ended because the job has: its outcome is the exit status.
      outcome(hasEnded(jobState(job)) ? job : await about(`job ${pk}`, client.getJob(pk)));
    });
  });
}

/** Without live logs: the `log` output (after waiting for the job's end with `follow`). */
async function logOutputOnly(client: UfdlClient, pk: number, follow: boolean): Promise<void> {
  let job = await client.getJob(pk);
  if (follow && !hasEnded(jobState(job))) {
    process.stderr.write(`ufdl-agent: this server has no live logs; waiting for job ${pk} to end to print its log\n`);
    job = await followJob(client, pk, new LiveView(process.stderr), { shown: jobState(job) });
  }
  const log = job.outputs.find((o) => o.name === 'log');
  if (!log) {
    throw new CliError(EXIT.FAILURE, `job ${pk} has no log yet: this server has no live logs, and the log is uploaded when the job ends`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'ufdl-log-'));
  try {
    await about(`the log of job ${pk}`, interruptible((signal) => client.downloadOutput(pk, log.name, log.type, join(dir, 'log'), { signal })));
    await pipeline(createReadStream(join(dir, 'log')), process.stdout, { end: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (follow) outcome(job);
}
