/**
 * pino JSON lines to stdout (journald, `docker logs`); human-readable lines only when stdout is a
 * terminal. Secrets never reach the logger: configuration values marked secret are not logged.
 */
import { pino, type Logger } from 'pino';
import { ConfigError } from './config/errors.js';
import { readConfig, type EffectiveConfig } from './config/load.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** The log level: the --log-level flag, else `agent.log_level` (file or UFDL_AGENT_LOG_LEVEL); checked. */
export function logLevelFrom(config: EffectiveConfig, flag: string | undefined): string {
  const level = flag ?? readConfig(config).string('agent.log_level');
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    const source = flag !== undefined ? 'flag --log-level' : config.sources['agent.log_level'];
    throw new ConfigError(`Configuration key 'agent.log_level' from ${source}: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return level;
}

export function createLogger(options: { level?: string; name: string; pretty?: boolean }): Logger {
  const level = options.level ?? process.env.UFDL_AGENT_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.UFDL_AGENT_LOG_FORMAT !== 'json');
  const redact = { paths: ['password', '*.password', 'headers.authorization', '*.access', '*.refresh'], censor: '[secret]' };
  if (pretty) {
    return pino({
      level,
      name: options.name,
      redact,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, name: options.name, redact });
}
