/**
 * Reads the reference launcher's INI file (`job-launcher.conf`) into our keys, so a site can switch
 * without rewriting its configuration. Options we have no use for (docker sudo, pip, compression) are
 * accepted and ignored; `${VAR}` is substituted from the environment (the reference's is broken).
 */
import { ConfigError } from './errors.js';

const MAPPING: Readonly<Record<string, string | null>> = {
  'general.debug': null,
  'general.keep_job_dirs': 'agent.keep_job_dirs',
  'general.pip_no_cache': null,
  'general.compression': null,
  'general.poll': null,
  'general.poll_backenderror_wait': 'agent.error_backoff',
  'general.gpu_id': 'agent.node_index',
  'general.cancel_check_wait': 'agent.cancel_check_interval',
  'backend.url': 'server.url',
  'backend.user': 'server.username',
  'backend.password': 'server.password',
  'docker.work_dir': 'agent.work_dir',
  'docker.cache_dir': null,
  'docker.use_sudo': null,
  'docker.ask_sudo_pw': null,
  'docker.use_current_user': null,
  'poll_simple.interval': 'agent.poll_interval',
};

export function readLauncherIni(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let section: string | undefined;
  for (const [i, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    const kv = /^([^=:]+)[=:](.*)$/.exec(line);
    // The line itself is not quoted: it may be the password's.
    if (!kv || section === undefined) throw new ConfigError(`${file}:${i + 1}: expected 'key = value' inside a [section]`);
    const id = `${section}.${kv[1]!.trim()}`;
    const value = kv[2]!
      .trim()
      .replaceAll('%%', '%')
      .replace(/\$\{(\w+)\}/g, (_m, name: string) => {
        const v = env[name];
        if (v === undefined) throw new ConfigError(`${file}:${i + 1}: ${id} refers to \${${name}}, which is not set`);
        return v;
      });
    if (!(id in MAPPING)) throw new ConfigError(`${file}:${i + 1}: unknown launcher option '${id}'`);
    const target = MAPPING[id];
    if (target) out[target] = value;
  }
  return out;
}
