/**
 * pino JSON lines to stdout (journald, `docker logs`); human-readable lines only when stdout is a
 * terminal. Secrets never reach the logger: configuration values marked secret are not logged.
 */
import { pino, type Logger } from 'pino';

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
