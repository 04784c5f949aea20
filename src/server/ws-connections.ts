/**
 * Web-socket connections after the handshake: what a client's bad frames cost, and how a silent peer
 * is let go.
 *
 * - A malformed frame (bad opcode, unmasked, oversized, invalid UTF-8) is the client's fault. `ws`
 *   closes the connection itself; the log gets one short line for it, at `info` and without a stack,
 *   so that a client reconnecting to send bad frames cannot fill the log with error-level traces.
 *   Anything else raised on a web-socket is a bug and is logged as such.
 * - Once upgraded, a connection has no idle timeout (`ws` turns it off). The server pings every
 *   watcher each `intervalMs` and ends one that did not answer the previous ping, so a peer that
 *   vanished, or that never reads, does not hold its connection forever.
 * - A connection is authenticated once, at its handshake. At each ping its user is checked again
 *   ({@link REVOKED_CLOSE}): a user deactivated or deleted, or whose password changed since, stops
 *   receiving within one interval, as its HTTP requests are refused at once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';

/** `ws` tags the errors it raises for a peer's protocol violations with a `WS_ERR_…` code. */
function isClientFault(error: Error & { code?: unknown }): boolean {
  return typeof error.code === 'string' && error.code.startsWith('WS_ERR_');
}

const reported = new WeakSet<WebSocket>();

/** The `errorHandler` option of @fastify/websocket. */
export function websocketErrorHandler(error: Error & { code?: unknown }, socket: WebSocket, request: FastifyRequest, _reply: FastifyReply): void {
  if (isClientFault(error)) {
    if (!reported.has(socket)) {
      reported.add(socket);
      request.log.info({ code: error.code, reason: error.message, url: request.url.split('?')[0], client: request.ip }, 'closed a web-socket after a malformed frame from the client');
    }
  } else {
    request.log.error({ err: error, url: request.url.split('?')[0] }, 'web-socket failed');
  }
  socket.terminate();
}

/** The close code and reason of a socket whose user may no longer be served (policy violation). */
export const REVOKED_CLOSE = { code: 1008, reason: 'the credentials were revoked: log in again' } as const;

/** Pings every registered socket each interval; ends those that did not answer the previous ping. */
export class WebSocketKeepAlive {
  readonly #alive = new Map<WebSocket, boolean>();
  /** Per socket, whether its user may still be served (absent: anonymous, nothing to check). */
  readonly #allowed = new Map<WebSocket, () => boolean>();
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => this.#sweep(), intervalMs);
    this.#timer.unref();
  }

  /** Keep `socket` alive while it answers and, when `allowed` is given, while that holds. */
  watch(socket: WebSocket, allowed?: () => boolean): void {
    this.#alive.set(socket, true);
    if (allowed) this.#allowed.set(socket, allowed);
    socket.on('pong', () => this.#alive.set(socket, true));
    socket.once('close', () => {
      this.#alive.delete(socket);
      this.#allowed.delete(socket);
    });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#alive.clear();
    this.#allowed.clear();
  }

  #stillAllowed(socket: WebSocket): boolean {
    try {
      return this.#allowed.get(socket)?.() !== false;
    } catch {
      // The check could not be made (the database closing with the server): keep the socket.
      return true;
    }
  }

  #sweep(): void {
    for (const [socket, alive] of this.#alive) {
      if (!alive) {
        socket.terminate();
        this.#alive.delete(socket);
        this.#allowed.delete(socket);
        continue;
      }
      if (!this.#stillAllowed(socket)) {
        this.#alive.delete(socket);
        this.#allowed.delete(socket);
        socket.close(REVOKED_CLOSE.code, REVOKED_CLOSE.reason);
        continue;
      }
      this.#alive.set(socket, false);
      try {
        socket.ping();
      } catch {
        socket.terminate();
      }
    }
  }
}
