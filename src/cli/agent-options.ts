/**
 * From the effective configuration to the agent's options. Shared by `run` and `standalone`; the
 * keys take their defaults from the agent's (`config/keys.ts`), and test/cli/agent-options.test.ts
 * checks that every key reaches its option.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultJournalFile, resolveAgentOptions, type AgentOptions } from '../agent/options.js';
import { ConfigError } from './config/errors.js';
import { readConfig, secretFromFile, secretValue, type EffectiveConfig } from './config/load.js';
import { optionRefusal } from './config/option-keys.js';

/** The configuration keys of the settings a running agent applies live (its `LIVE_OPTIONS`). */
export const LIVE_AGENT_KEYS: Readonly<Record<string, keyof AgentOptions>> = {
  'agent.slots': 'slots',
  'agent.poll_interval': 'pollScheduleS',
};

/** `agent.docker` as the agent's `docker` option. */
const DOCKER_SWITCH: Readonly<Record<string, boolean | 'auto'>> = { auto: 'auto', on: true, off: false };

export function agentOptionsFrom(config: EffectiveConfig): AgentOptions {
  const c = readConfig(config);
  const first = secretValue(config, 'server.password');
  if (first === undefined) {
    throw new ConfigError(
      "no password for the server: set server.password_file (or UFDL_AGENT_SERVER_PASSWORD_FILE), or UFDL_AGENT_SERVER_PASSWORD",
    );
  }
  const password = passwordSource(config, first);
  const statusPort = c.number('agent.status_port');
  const options: AgentOptions = {
    serverUrl: c.urls('server.url'),
    username: c.string('server.username'),
    password,
    workDir: resolve(c.string('agent.work_dir')),
    journalFile: journalFileOf(config),
    slots: c.number('agent.slots'),
    pollScheduleS: c.list('agent.poll_interval'),
    errorBackoffS: c.list('agent.error_backoff'),
    waitSeconds: c.number('agent.wait'),
    cancelCheckIntervalMs: c.milliseconds('agent.cancel_check_interval'),
    progressIntervalMs: c.milliseconds('agent.progress_interval'),
    drainTimeoutMs: c.milliseconds('agent.drain_timeout'),
    killGraceMs: c.milliseconds('agent.kill_grace'),
    keepJobDirs: c.bool('agent.keep_job_dirs'),
    nodeIp: c.optionalString('agent.node_ip'),
    nodeIndex: c.number('agent.node_index'),
    maxRestarts: c.number('agent.max_restarts'),
    fenceMarginMs: c.milliseconds('agent.fence_margin'),
    status: statusPort < 0 ? null : { host: c.string('agent.status_host'), port: statusPort },
    requestTimeoutMs: c.milliseconds('server.timeout'),
    minFreeDiskBytes: c.number('agent.min_free_disk'),
    hardwareIntervalMs: c.milliseconds('agent.hardware_interval'),
    docker: DOCKER_SWITCH[c.string('agent.docker')] ?? 'auto',
    dockerNetwork: c.string('agent.docker_network'),
    dockerPull: c.string('agent.docker_pull') as 'never' | 'missing' | 'always',
    liveLogs: c.bool('logs.live'),
    logMaxBytes: c.number('logs.max_bytes'),
    failbackAfterMs: c.milliseconds('server.failback_after'),
  };
  // The agent checks its options as it starts, where a refusal was an unexpected error (70), which
  // systemd restarts forever: a value the loader takes but the agent refuses (a negative
  // agent.slots) is a configuration error (78) naming the key and its source, found before anything starts.
  try {
    resolveAgentOptions(options);
  } catch (err) {
    throw optionRefusal(err, config) ?? new ConfigError(`${(err as Error).message} (from the configuration: see 'ufdl-agent config')`);
  }
  return options;
}

/** The journal the agent of this configuration writes: `agent.journal`, else the agent's default. */
export function journalFileOf(config: EffectiveConfig): string {
  const c = readConfig(config);
  const explicit = c.optionalString('agent.journal');
  return explicit === undefined ? defaultJournalFile(c.string('agent.work_dir')) : resolve(explicit);
}

/**
 * The agent's password: the value itself, or, from `server.password_file`, the file read again at
 * each login, so that a password fixed there under a running agent is used at its next attempt
 * without a restart. A file that cannot be read then, or is empty (an editor between write and
 * rename), leaves the last password it gave.
 */
function passwordSource(config: EffectiveConfig, first: string): string | (() => string) {
  const direct = config.values['server.password'];
  const file = config.values['server.password_file'];
  if ((typeof direct === 'string' && direct !== '') || typeof file !== 'string' || file === '') return first;
  let last = first;
  return () => {
    try {
      // Only a regular file: reading a FIFO with no writer would block the agent's event loop.
      if (!statSync(file).isFile()) return last;
      const now = secretFromFile(file);
      if (now !== '') last = now;
    } catch {
      // Kept: the last password the file gave.
    }
    return last;
  };
}
