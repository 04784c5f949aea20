/**
 * `ufdl-agent outputs PK`: the outputs of a job — name, type, pk.
 */
import type { Command } from 'commander';
import { parsePk } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { printJson, printTable } from '../output.js';

interface OutputsFlags extends ConnectFlags {
  json?: boolean;
}

export function registerOutputs(program: Command): void {
  connectFlags(
    program
      .command('outputs')
      .description('List the outputs of a job: name, type, pk')
      .argument('<pk>', 'job pk')
      .option('--json', 'print JSON'),
  ).action(async (rawPk: string, flags: OutputsFlags) => {
    const pk = parsePk(rawPk, 'job pk');
    await withSession(flags, async ({ client }) => {
      const job = await about(`job ${pk}`, client.getJob(pk));
      if (flags.json) {
        printJson(job.outputs);
        return;
      }
      if (job.outputs.length === 0) {
        process.stderr.write(`job ${pk} has no outputs\n`);
        return;
      }
      printTable(
        [{ title: 'name' }, { title: 'type' }, { title: 'pk', align: 'right' }],
        job.outputs.map((o) => [o.name, o.type, String(o.pk)]),
      );
    });
  });
}
