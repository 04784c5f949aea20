/**
 * Run the embedded server as a long-lived process: listen, log where, and stop cleanly on
 * SIGTERM/SIGINT (stop accepting, let in-flight requests finish, close the database).
 */
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { describeHostLookupRetry, waitForHostLookup, type HostLookupRetry } from '../host-lookup-wait.js';
import { buildApp } from './app.js';
import { resolveServerOptions, type ServerOptions } from './options.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The server cannot listen where it was told to (port taken, no permission, no such address, a host
 * name the resolver cannot look up now).
 */
export class ListenError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly code: string,
  ) {
    const why =
      code === 'EADDRINUSE'
        ? 'port is in use (another UFDL server?)'
        : code === 'EACCES'
          ? 'port needs privileges this user lacks'
          : code === 'ENOTFOUND'
            ? 'host name is unknown'
            : code === 'EAI_AGAIN'
              ? 'host name could not be looked up: the resolver gave no answer (a temporary DNS failure, EAI_AGAIN) for as long as it was waited for'
              : 'address is not an address of this machine';
    super(`cannot listen on ${host}:${port}: the ${why}`);
    this.name = 'ListenError';
  }

  /** Whether trying again later may work: the resolver did not answer (EAI_AGAIN), it did not say no. */
  get temporary(): boolean {
    return this.code === 'EAI_AGAIN';
  }
}

const LISTEN_BACKLOG = 4096;

const LISTEN_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

export interface StartServerExtras {
  /** When the port is taken, try the next ones, up to this many more (standalone's default port). @default 0 */
  nextFreePorts?: number;
  /** Ports the search must skip (e.g. the agent's status port beside it). */
  avoidPorts?: readonly number[];
  /** Aborted when the process is asked to stop while it waits for the resolver: the start ends, throwing the signal's reason. */
  signal?: AbortSignal;
  /**
   * What the start does now, each time that changes: the wait for the resolver (which may last
   * minutes at boot), then opening the database. For systemd's status line, so that `systemctl
   * status` says why a server is not up yet.
   */
  onProgress?: (what: string) => void;
}

export async function startServer(options: ServerOptions, log: Logger, extras: StartServerExtras = {}): Promise<RunningServer> {
  // Checked before anything is created: a taken port must not leave a new data directory behind.
  const wanted = resolveServerOptions(options);
  // A host name the resolver cannot look up yet (at boot) is waited for here, before anything is created.
  const onRetry = extras.onProgress && ((retry: HostLookupRetry) => extras.onProgress!(describeHostLookupRetry(retry)));
  await waitForHostLookup(wanted.host, { listener: 'the server', log, signal: extras.signal, onRetry }).catch((err: unknown) => {
    if (extras.signal?.aborted) throw err;
    throw asListenError(err, wanted.host, wanted.port);
  });
  extras.onProgress?.('opening the database');
  const port = await firstFreePort(wanted.host, wanted.port, extras.nextFreePorts ?? 0, extras.avoidPorts);
  if (port !== wanted.port) log.warn({ wanted: wanted.port, port }, `port ${wanted.port} is in use; using ${port}`);
  const { app, options: resolved, adminPasswordFile } = await buildApp({ ...options, port }, log);
  try {
    // Thousands of agents reconnect at once after a restart; the default queue of 511 pending
    // connections overflows, and the kernel then drops and later resets the surplus. The kernel caps
    // this at net.core.somaxconn.
    await app.listen({ host: resolved.host, port: resolved.port, backlog: LISTEN_BACKLOG });
  } catch (err) {
    await app.close();
    throw asListenError(err, resolved.host, resolved.port);
  }
  const address = app.server.address();
  const listening = address !== null && typeof address === 'object' ? address.port : resolved.port;
  const host = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  const url = `http://${host}:${listening}`;
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

/**
 * `port` if nothing listens there, else the next free one within `more` ports, skipping `avoid`.
 * Port 0 (any) is always free. Throws a {@link ListenError} when none is.
 */
export async function firstFreePort(host: string, port: number, more: number, avoid: readonly number[] = []): Promise<number> {
  if (port === 0) return 0;
  for (let candidate = port; ; candidate++) {
    if (candidate !== port && avoid.includes(candidate)) continue;
    try {
      await probe(host, candidate);
      return candidate;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' || candidate >= port + more || candidate >= 65535) throw asListenError(err, host, port);
    }
  }
}

function probe(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

function asListenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && LISTEN_ERRORS.has(code) ? new ListenError(host, port, code) : err;
}
