/**
 * Run the embedded server as a long-lived process: listen, log where, and stop cleanly on
 * SIGTERM/SIGINT (stop accepting, let in-flight requests finish, close the database).
 */
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { ServerOptions } from './options.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions, log: Logger): Promise<RunningServer> {
  const { app, options: resolved, adminPasswordFile } = await buildApp(options, log);
  await app.listen({ host: resolved.host, port: resolved.port });
  const address = app.server.address();
  const port = address !== null && typeof address === 'object' ? address.port : resolved.port;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  const url = `http://${host}:${port}`;
  const dashboard = resolved.extensions ? `${url}/ui/` : undefined;
  log.info(
    { url, dataDir: resolved.dataDir, extensions: resolved.extensions, adminPasswordFile, dashboard },
    `ufdl server listening on ${url}${dashboard ? `; dashboard at ${dashboard}` : ''}`,
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
