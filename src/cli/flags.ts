/** Flags every subcommand takes. */
import type { Command } from 'commander';

export interface CommonFlags {
  config?: string;
  logLevel?: string;
  json?: boolean;
}

export function commonFlags(command: Command): Command {
  return command
    .option('-c, --config <file>', 'configuration file (TOML, or the reference launcher INI); also UFDL_AGENT_CONFIG')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (agent.log_level; also UFDL_AGENT_LOG_LEVEL)');
}
