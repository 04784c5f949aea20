/**
 * Slow and greedy clients. Without limits, a client that sends a request's headers or body a byte at
 * a time — or nothing at all after connecting — holds a connection and a file descriptor for as long
 * as it likes, and a few hundred of them starve the server of descriptors, so that every new
 * connection is reset, no login needed. So:
 *
 * - the headers of a request must arrive within `headersTimeoutMs` (Node answers 408 and closes);
 * - a connection on which nothing moves for `idleTimeoutMs` — between requests, in the middle of a
 *   body, while a response waits to be read — is closed; a wake-up poll (`X-UFDL-Wait`) extends its
 *   own connection for as long as the server holds it, and web-sockets have their own ping;
 * - one client address may hold at most `maxConnectionsPerAddress` connections at once (IPv6 counted
 *   by /64, the block one host usually has), and the server at most `maxConnections`; a connection
 *   over either cap is answered at once with a JSON 429 or 503 and closed, before it costs more.
 *
 * There is deliberately no limit on a whole request's duration: an 8 GiB output upload on a slow
 * link is legitimate as long as bytes keep coming.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { ERROR_CODES, type ErrorCode } from '../protocol/errors.js';

export interface ConnectionLimits {
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  /** 0: no cap. */
  maxConnectionsPerAddress: number;
  /** 0: no cap. */
  maxConnections: number;
}

/**
 * How long a refused connection may linger after its answer before it is destroyed: short, since it
 * holds a descriptor; what the client sends meanwhile is read and dropped, so that the close is a
 * FIN after the answer rather than a reset that could discard it.
 */
const REFUSED_LINGER_MS = 200;

/**
 * The default global cap: most of the process's file-descriptor limit, leaving room for the database,
 * the output store and uploads in flight.
 */
export function defaultMaxConnections(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    if (soft !== undefined && soft !== 'unlimited') return Math.max(64, Math.floor(Number(soft) * 0.8) - 100);
  } catch {
    // not Linux: no cap but the per-address one
  }
  return 0;
}

/** The key a connection is counted under: the IPv4 address, or the /64 of an IPv6 address. */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return '?';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Apply the limits to `server` (before it listens). */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // Node checks the headers timeout on this interval (30 s by default, longer than the timeout); it
  // reads the property when the server starts listening, though its types do not declare it.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(
    250,
    Math.min(5000, Math.floor(limits.headersTimeoutMs / 4)),
  );
  server.requestTimeout = 0;
  server.timeout = limits.idleTimeoutMs;
  server.keepAliveTimeout = Math.min(server.keepAliveTimeout, limits.idleTimeoutMs);

  const perAddress = new Map<string, number>();
  let total = 0;
  // Before the HTTP server's own listener: a refused connection never gets a parser.
  server.prependListener('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    const mine = (perAddress.get(key) ?? 0) + 1;
    if (limits.maxConnectionsPerAddress > 0 && mine > limits.maxConnectionsPerAddress) {
      return refuse(socket, 'UFDL_ERR_REQ_TOO_MANY_CONNECTIONS', `Too many connections from ${key}: at most ${limits.maxConnectionsPerAddress} at once (serve.max_connections_per_address)`);
    }
    if (limits.maxConnections > 0 && total + 1 > limits.maxConnections) {
      return refuse(socket, 'UFDL_ERR_SERVER_TOO_MANY_CONNECTIONS', `The server holds its maximum of ${limits.maxConnections} connections (serve.max_connections); retry shortly`);
    }
    perAddress.set(key, mine);
    total++;
    socket.once('close', () => {
      total--;
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left === 0) perAddress.delete(key);
      else perAddress.set(key, left);
    });
  });
}

/**
 * Keep `socket` open while the server itself holds the request (a wake-up poll) for up to `ms`, then
 * go back to the idle timeout. Returns the function that restores it.
 */
export function holdOpen(socket: Socket | null | undefined, ms: number, idleTimeoutMs: number): () => void {
  if (!socket || idleTimeoutMs <= 0) return () => {};
  socket.setTimeout(ms + idleTimeoutMs);
  return () => {
    if (!socket.destroyed) socket.setTimeout(idleTimeoutMs);
  };
}

/** Answer a connection over a cap with a JSON error and close it, whatever the client sends. */
function refuse(socket: Socket, code: ErrorCode, detail: string): void {
  const status = ERROR_CODES[code].status;
  const body = JSON.stringify({ detail });
  const reason = status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  socket.on('error', () => {}); // the client may have gone already
  socket.resume();
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

/**
 * Fastify's `clientErrorHandler`: a request that never became one — headers too slow (408), too
 * large (431), not HTTP (400) — is answered as JSON `{"detail": …}` like every other error, then
 * the connection is closed.
 */
export function answerClientErrors(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, detail] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', "The request's headers did not arrive within serve.headers_timeout"]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'The request headers are too large']
        : [400, 'Bad Request', `Malformed HTTP request (${error.code ?? 'parse error'})`];
  const body = JSON.stringify({ detail });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
