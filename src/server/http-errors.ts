/**
 * Every error leaves the server as JSON `{"detail": …}` with a 4xx status: our own `UfdlError`s,
 * fastify's (body too large, bad JSON, bad content type), unknown routes (404) and known routes with
 * the wrong method (405; the reference answers 500, bug B1). A 500 means a bug: it is logged with its
 * stack and the client gets a JSON detail, never an HTML page.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPVersion, type Instance } from 'find-my-way';
import { ZodError } from 'zod';
import { describeZodError } from '../protocol/error-constructors.js';
import { ERROR_CODES, isUfdlError, UfdlError } from '../protocol/errors.js';
import { TypeStringError } from '../protocol/type-string.js';
import { loggableUrl } from './loggable-url.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export function registerErrorHandling(app: FastifyInstance): void {
  // A shadow router of every route's path, to tell "no such route" (404) from "wrong method" (405).
  const shadow: Instance<HTTPVersion.V1> = FindMyWay({ ignoreTrailingSlash: true });
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (!(METHODS as readonly string[]).includes(method)) continue;
      try {
        shadow.on(method as (typeof METHODS)[number], route.url, () => {});
      } catch {
        // The same method and path registered twice (e.g. GET with a websocket handler): harmless.
      }
    }
  });

  app.setNotFoundHandler((request, reply) => {
    closeIfRefusedUpgrade(request, reply);
    const path = request.url.split('?')[0] ?? '/';
    const allowed = METHODS.filter((m) => m !== request.method && shadow.find(m, path) !== null);
    if (allowed.length > 0) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({ detail: `Method "${request.method}" not allowed on ${path}; allowed: ${allowed.join(', ')}` });
      return;
    }
    void reply.code(404).send({ detail: `Not found: ${request.method} ${path}` });
  });

  app.setErrorHandler((error: FastifyError | UfdlError | ZodError, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toResponse(error);
    if (status >= 500) request.log.error({ err: error, url: loggableUrl(request.url), method: request.method }, 'request failed');
    if (status === 401) void reply.header('www-authenticate', 'Bearer realm="api"');
    closeIfRefusedUpgrade(request, reply);
    // Errors on binary routes must still be JSON; say so.
    void reply.code(status).type('application/json; charset=utf-8').send(body);
  });
}

/**
 * Fastify's own refusals before a route is found — a path that is not valid percent-encoding
 * (FST_ERR_BAD_URL, 400), a path parameter over the router's `maxParamLength` (414) — leave as JSON
 * `{"detail": …}` like every other error, instead of fastify's default body. The `frameworkErrors`
 * option of `Fastify()`.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toResponse(error);
  closeIfRefusedUpgrade(request, reply);
  void reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * A web-socket handshake that `ws` refuses (a request with `Upgrade` headers on any route: wrong
 * method, bad `Upgrade`, missing or invalid `Sec-WebSocket-Key` or `-Version`, a bad protocol list)
 * is answered by `ws` with a text/html page. With a `wsClientError` listener, `ws` leaves the answer
 * to us: the same refusal as JSON `{"detail": …}`. Call after registering @fastify/websocket.
 */
export function answerBadHandshakesWithJson(app: FastifyInstance): void {
  app.websocketServer.on('wsClientError', (error: Error, socket: Duplex) => {
    const status = error.message === 'Invalid HTTP method' ? 405 : 400;
    const body = JSON.stringify({ detail: `Web-socket handshake refused: ${error.message}` });
    const version = error.message.includes('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: 13, 8\r\n' : '';
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${version}` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  });
}

/**
 * A request whose `Expect` header is not `100-continue` (the only expectation HTTP/1.1 defines) is
 * refused by Node before any route sees it; without a `checkExpectation` listener Node answers a 417
 * with no body at all. With one, the same refusal as JSON `{"detail": …}`. The request's body is
 * never read: Node discards it once the answer is sent, and the connection serves the next request.
 */
export function answerUnmetExpectations(server: Server): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const { status } = ERROR_CODES.UFDL_ERR_REQ_EXPECTATION;
    const body = JSON.stringify({ detail: `Expectation failed: this server meets only 'Expect: 100-continue', not '${request.headers.expect ?? ''}'` });
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    response.end(body);
  });
}

/**
 * A web-socket handshake refused with an ordinary HTTP answer (401, 403, 404, …) has its socket
 * destroyed by @fastify/websocket once the answer is sent. Say so in the answer (`Connection:
 * close`): with `keep-alive` a client pools the connection, and its next request on it fails with
 * "socket hang up". Every such refusal passes through the handlers below (a hook or a pre-handler
 * throws, no route matches, fastify refuses the URL): an upgrade that reaches a route's handler is
 * taken over by the plugin, never answered. Set here rather than in an `onSend` hook, which every
 * answer would pay for.
 */
function closeIfRefusedUpgrade(request: FastifyRequest, reply: FastifyReply): void {
  if (request.ws) void reply.header('connection', 'close');
}

export function toResponse(error: unknown): { status: number; body: Record<string, unknown> } {
  if (isUfdlError(error)) return { status: error.statusCode, body: { detail: error.message, ...error.extra } };
  if (error instanceof ZodError) return { status: 400, body: { detail: describeZodError(error) } };
  // A type string from a request is refused where it is read (UFDL_ERR_TYPE_PARSE); one that escapes
  // a route was stored with a template before the server checked what it checks now (a number
  // constant of 1e999 stored as Infinity), and every read of that template would fail the same way.
  if (error instanceof TypeStringError) {
    const stored = new UfdlError('UFDL_ERR_TEMPLATE_BAD', `${error.message}: a type string stored with this template can no longer be read (it was stored before this was checked); import the template again`);
    return { status: stored.statusCode, body: { detail: stored.message } };
  }
  const database = databaseErrorResponse(error);
  if (database) return database;
  const err = error as Partial<FastifyError> & { message?: string };
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { detail: 'Request body is larger than the server accepts' } };
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, body: { detail: `Unsupported media type: ${err.message ?? ''}` } };
  if (status >= 400 && status < 500) return { status, body: { detail: err.message ?? 'Bad request' } };
  return { status: 500, body: { detail: 'Internal server error; the server log has the details.' } };
}

/** PostgreSQL's SQLSTATE for a statement cancelled, here by its `statement_timeout`. */
const STATEMENT_CANCELLED = '57014';

/**
 * PostgreSQL's errors (`store/postgres/statement-thread.ts`): the database out of reach, or a
 * statement it cancelled after its timeout, is a 503 the client retries; a data exception (SQLSTATE
 * class 22: a value that does not fit its column's type, a number out of range) can only come from a
 * value the request sent, so it is the client's 400 — SQLite compares such values without complaint,
 * and neither store may answer a hostile value with 500.
 */

function databaseErrorResponse(error: unknown): { status: number; body: Record<string, unknown> } | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  // 57014: cancelled after the statement timeout (a lock held elsewhere, a database too slow to
  // answer): the database did not answer in time, and the transaction it was in was rolled back.
  if (error.name === 'DatabaseUnreachableError' || (error.name === 'DatabaseStatementError' && code === STATEMENT_CANCELLED)) {
    return { status: ERROR_CODES.UFDL_ERR_SERVER_DATABASE.status, body: { detail: `${ERROR_CODES.UFDL_ERR_SERVER_DATABASE.doc}` } };
  }
  if (error.name === 'DatabaseStatementError' && typeof code === 'string' && code.startsWith('22')) {
    return { status: 400, body: { detail: `A value in the request does not fit its field: ${error.message.replace(/^PostgreSQL: /, '')}` } };
  }
  return undefined;
}
