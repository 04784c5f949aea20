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

/** Pings every registered socket each interval; ends those that did not answer the previous ping. */
export class WebSocketKeepAlive {
  readonly #alive = new Map<WebSocket, boolean>();
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs: number) {
    this.#timer = setInterval(() => this.#sweep(), intervalMs);
    this.#timer.unref();
  }

  watch(socket: WebSocket): void {
    this.#alive.set(socket, true);
    socket.on('pong', () => this.#alive.set(socket, true));
    socket.once('close', () => this.#alive.delete(socket));
  }

  close(): void {
    clearInterval(this.#timer);
    this.#alive.clear();
  }

  #sweep(): void {
    for (const [socket, alive] of this.#alive) {
      if (!alive) {
        socket.terminate();
        this.#alive.delete(socket);
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
