/**
 * `ufdl-agent config`: the effective configuration, each value with where it came from. Secrets are
 * shown only as `(set)` / `(unset)`.
 */
import type { Command } from 'commander';
import { describeConfig, loadConfig } from '../config/load.js';
import { commonFlags, type CommonFlags } from '../flags.js';

export function registerConfig(program: Command): void {
  commonFlags(program.command('config').description('Print the effective configuration and the source of each value'))
    .option('--json', 'print JSON')
    .action((flags: CommonFlags) => {
      const rows = describeConfig(loadConfig({ file: flags.config }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      const width = Math.max(...rows.map((r) => r.key.length));
      const valueWidth = Math.min(40, Math.max(...rows.map((r) => r.value.length)));
      for (const row of rows) {
        process.stdout.write(`${row.key.padEnd(width)}  ${row.value.padEnd(valueWidth)}  ${row.source}\n`);
      }
    });
}
