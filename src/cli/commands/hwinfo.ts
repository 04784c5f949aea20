/**
 * `ufdl-agent hwinfo [--json]`: what the agent detects on this machine (CPUs, memory, the address
 * it registers with, GPUs from `nvidia-smi`). No server needed; a missing or failing `nvidia-smi` is
 * reported in the output, not as an error.
 */
import type { Command } from 'commander';
import { oneLineUsageErrors } from '../cli-error.js';
import { loadConfig } from '../config/load.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { printJson } from '../output.js';

interface HwinfoFlags extends CommonFlags {
  json?: boolean;
  nvidiaSmi?: string;
}

export function registerHwinfo(program: Command): void {
  commonFlags(
    oneLineUsageErrors(program.command('hwinfo'))
      .description('Show the hardware the agent detects: CPUs, memory, node address, GPUs (no server needed)')
      .option('--json', 'print JSON')
      .option('--nvidia-smi <binary>', 'the nvidia-smi to run (default: nvidia-smi from PATH)'),
  ).action(async (flags: HwinfoFlags) => {
    const config = loadConfig({ file: flags.config });
    const address = config.values['agent.node_ip'];
    // Loaded here: detection is only needed by this command.
    const { detectHardware } = await import('../../agent/hardware/detect.js');
    const { formatHardwareText } = await import('../../agent/hardware/format.js');
    const hw = await detectHardware({
      ...(typeof address === 'string' && address !== '' ? { address } : {}),
      ...(flags.nvidiaSmi === undefined ? {} : { nvidiaSmi: { binary: flags.nvidiaSmi } }),
    });
    if (flags.json) printJson(hw);
    else process.stdout.write(formatHardwareText(hw));
  });
}
