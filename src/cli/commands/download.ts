/**
 * `ufdl-agent download PK NAME [--type T] [-o FILE] [--force]`: stream one output of a job into a
 * file (default: the output's name in the current directory). The file is written beside its
 * destination under a temporary name and renamed when complete; an existing file is only replaced
 * with `--force`.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, parsePk, usageError } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { EXIT } from '../exit-codes.js';
import { interruptible } from '../interrupt.js';
import { formatBytes } from '../output.js';

interface DownloadFlags extends ConnectFlags {
  type?: string;
  output?: string;
  force?: boolean;
}

export function registerDownload(program: Command): void {
  connectFlags(
    program
      .command('download')
      .description('Download an output of a job into a file (streamed; never overwrites without --force)')
      .argument('<pk>', 'job pk')
      .argument('<name>', 'output name (see `ufdl-agent outputs PK`)')
      .option('-t, --type <type>', 'output type, when the job has outputs of this name with several types')
      .option('-o, --output <file>', 'destination file (default: the output name)')
      .option('-f, --force', 'replace the destination file if it exists'),
  ).action(async (rawPk: string, name: string, flags: DownloadFlags) => {
    const pk = parsePk(rawPk, 'job pk');
    const dest = resolve(flags.output ?? safeFileName(name));
    if (!flags.force && existsSync(dest)) throw new CliError(EXIT.FAILURE, `${dest} already exists; use --force to replace it`);
    await withSession(flags, async ({ client }) => {
      const job = await about(`job ${pk}`, client.getJob(pk));
      const named = job.outputs.filter((o) => o.name === name);
      const matches = flags.type === undefined ? named : named.filter((o) => o.type === flags.type);
      if (matches.length === 0) {
        const list = job.outputs.map((o) => `${o.name} (${o.type})`).join(', ') || 'none';
        const what = flags.type === undefined ? `'${name}'` : `'${name}' of type ${flags.type}`;
        throw new CliError(EXIT.FAILURE, `job ${pk} has no output ${what} (outputs: ${list})`);
      }
      if (matches.length > 1) {
        throw usageError(`job ${pk} has outputs named '${name}' of several types (${matches.map((o) => o.type).join(', ')}); choose one with --type`);
      }
      const output = matches[0]!;
      let result;
      try {
        result = await about(`output '${name}' of job ${pk}`, interruptible((signal) => client.downloadOutput(pk, output.name, output.type, dest, { signal })));
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && (err as { syscall?: unknown }).syscall !== undefined && !(err instanceof CliError)) {
          throw new CliError(EXIT.FAILURE, `cannot write ${dest}: ${(err as Error).message}`);
        }
        throw err;
      }
      process.stdout.write(`${result.path} (${output.name}, ${output.type}, ${formatBytes(result.bytes)})\n`);
    });
  });
}

/** An output name as a file name in the current directory: no directories, never `.` or `..`. */
function safeFileName(name: string): string {
  const base = basename(name.replace(/\\/g, '/'));
  return base === '' || base === '.' || base === '..' ? 'output' : base;
}
