/**
 * From the effective configuration to the agent's options. Shared by `run` and `standalone`.
 */
import { dirname, join, resolve } from 'node:path';
import type { AgentOptions } from '../agent/options.js';
import { ConfigError } from './config/errors.js';
import { secretValue, type EffectiveConfig } from './config/load.js';

/** The configuration keys of the settings a running agent applies live (its `LIVE_OPTIONS`). */
export const LIVE_AGENT_KEYS: Readonly<Record<string, keyof AgentOptions>> = {
  'agent.slots': 'slots',
  'agent.poll_interval': 'pollScheduleS',
};

export function agentOptionsFrom(config: EffectiveConfig): AgentOptions {
  const v = config.values;
  const password = secretValue(config, 'server.password');
  if (password === undefined) {
    throw new ConfigError(
      "no password for the server: set server.password_file (or UFDL_AGENT_SERVER_PASSWORD_FILE), or UFDL_AGENT_SERVER_PASSWORD",
    );
  }
  const workDir = resolve(v['agent.work_dir'] as string);
  const statusPort = v['agent.status_port'] as number;
  const seconds = (id: string) => Math.round((v[id] as number) * 1000);
  return {
    serverUrl: v['server.url'] as string,
    username: v['server.username'] as string,
    password,
    workDir,
    journalFile: (v['agent.journal'] as string | null) ?? join(dirname(workDir), 'journal.sqlite3'),
    slots: v['agent.slots'] as number,
    pollScheduleS: v['agent.poll_interval'] as number[],
    errorBackoffS: v['agent.error_backoff'] as number[],
    waitSeconds: v['agent.wait'] as number,
    cancelCheckIntervalMs: seconds('agent.cancel_check_interval'),
    progressIntervalMs: seconds('agent.progress_interval'),
    drainTimeoutMs: seconds('agent.drain_timeout'),
    killGraceMs: seconds('agent.kill_grace'),
    keepJobDirs: v['agent.keep_job_dirs'] as boolean,
    nodeIp: (v['agent.node_ip'] as string | null) ?? undefined,
    nodeIndex: v['agent.node_index'] as number,
    maxRestarts: v['agent.max_restarts'] as number,
    fenceMarginMs: seconds('agent.fence_margin'),
    status: statusPort < 0 ? null : { host: v['agent.status_host'] as string, port: statusPort },
    requestTimeoutMs: seconds('server.timeout'),
    minFreeDiskBytes: v['agent.min_free_disk'] as number,
    hardwareIntervalMs: seconds('agent.hardware_interval'),
    liveLogs: v['logs.live'] as boolean,
    logMaxBytes: v['logs.max_bytes'] as number,
  };
}
