/**
 * The agent's status endpoint on loopback (docs/OPERATIONS.md, "Health and metrics"), a plain
 * `node:http` server with four read-only routes:
 *
 * - `GET /livez` — 200 while the event loop turns and the journal answers; 503 otherwise.
 * - `GET /readyz` — 200 when the agent can take a job now (running, server reachable, credentials
 *   accepted, not self-fenced, a free slot, journal writable, enough free disk); 503 otherwise, with
 *   `{ready: false, reasons: [...]}`, each reason a short sentence (`readiness.ts`).
 * - `GET /status.json` — the {@link StatusSource.getStatus} snapshot (also read by `ufdl-agent status`).
 * - `GET /metrics` — Prometheus text from the agent's own registry.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { waitForHostLookup, type HostLookupWait } from '../../host-lookup-wait.js';

export interface Health {
  ok: boolean;
  reasons: string[];
}

export interface StatusSource {
  getStatus(): unknown;
  liveness(): Health;
  readiness(): Health;
  /** Called before `/metrics` renders, to refresh gauges. */
  refreshMetrics(): void;
  readonly registry: Registry;
}

export interface StatusServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The status endpoint cannot listen where it was told to (port taken, no permission, no such address,
 * a host name the resolver cannot look up now).
 */
export class StatusListenError extends Error {
  readonly code: string;
  /** Whether the port (not the address) is at fault. */
  readonly portProblem: boolean;
  /** Whether trying again later may work: the resolver did not answer (EAI_AGAIN), it did not say no. */
  readonly temporary: boolean;

  constructor(host: string, port: number, code: string, options: { cause: unknown }) {
    const why =
      code === 'EADDRINUSE'
        ? 'port is in use (another agent?)'
        : code === 'EACCES'
          ? 'port needs privileges this user lacks'
          : code === 'ENOTFOUND'
            ? 'host name is unknown'
            : code === 'EAI_AGAIN'
              ? 'host name could not be looked up: the resolver gave no answer (a temporary DNS failure, EAI_AGAIN) for as long as it was waited for'
              : 'address is not an address of this machine';
    super(`the status endpoint cannot listen on ${host}:${port}: the ${why}`, options);
    this.name = 'StatusListenError';
    this.code = code;
    this.portProblem = code === 'EADDRINUSE' || code === 'EACCES';
    this.temporary = code === 'EAI_AGAIN';
  }
}

const LISTEN_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** How the status endpoint waits for a resolver that cannot answer yet (`host-lookup-wait.ts`). */
export interface StatusLookupWait {
  log: HostLookupWait['log'];
  /** The agent stops: the wait ends, throwing the signal's reason. */
  signal: AbortSignal;
  /** Each lookup the resolver could not answer (for the readiness reasons and systemd's status line). */
  onRetry?: HostLookupWait['onRetry'];
}

export async function startStatusServer(source: StatusSource, where: { host: string; port: number }, wait: StatusLookupWait): Promise<StatusServer> {
  await waitForHostLookup(where.host, { listener: 'the status endpoint', log: wait.log, signal: wait.signal, onRetry: wait.onRetry }).catch((err: unknown) => {
    if (wait.signal.aborted) throw err;
    throw new StatusListenError(where.host, where.port, 'EAI_AGAIN', { cause: err });
  });
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, JSON.stringify({ detail: `Method ${req.method} not allowed` }));
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/livez': {
          const health = source.liveness();
          send(health.ok ? 200 : 503, JSON.stringify({ status: health.ok ? 'ok' : 'unavailable', reasons: health.reasons }));
          return;
        }
        case '/readyz': {
          const health = source.readiness();
          send(health.ok ? 200 : 503, JSON.stringify({ ready: health.ok, status: health.ok ? 'ok' : 'unavailable', reasons: health.reasons }));
          return;
        }
        case '/status.json':
          send(200, JSON.stringify(source.getStatus(), null, 2));
          return;
        case '/metrics':
          source.refreshMetrics();
          source.registry.metrics().then(
            (text) => send(200, text, source.registry.contentType),
            (err: unknown) => send(500, JSON.stringify({ detail: String(err) })),
          );
          return;
        default:
          send(404, JSON.stringify({ detail: 'Not found. Routes: /livez, /readyz, /status.json, /metrics' }));
      }
    } catch (err) {
      send(500, JSON.stringify({ detail: err instanceof Error ? err.message : String(err) }));
    }
  });
  // Keep-alive sockets of a scraper must not hold the process open after close().
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code !== undefined && LISTEN_ERRORS.has(err.code) ? new StatusListenError(where.host, where.port, err.code, { cause: err }) : err),
    );
    server.listen(where.port, where.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = where.host.includes(':') ? `[${where.host}]` : where.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
