/**
 * Stop a simple process (the server) on SIGTERM or SIGINT: run `stop` once, then exit 0. A second
 * signal while stopping exits at once with status 1, for an operator who does not want to wait.
 */
import type { Logger } from 'pino';

export function onStopSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal while stopping: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: finishing in-flight requests, then closing the database');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
