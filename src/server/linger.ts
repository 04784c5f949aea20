/**
 * Let a closing server actually close. `forceCloseConnections: 'idle'` closes the keep-alive
 * connections that are idle when `close()` starts; a response still finishing at that moment (a
 * streamed download whose last bytes the client already has) leaves its connection open until the
 * keep-alive timeout, and `close()` waits that long. Ending such a connection as soon as its
 * response is done fixes that. Registered once, on the root instance, so it covers every route.
 */
import type { FastifyInstance } from 'fastify';

export function endConnectionsOnceClosing(app: FastifyInstance): void {
  const { closing } = app.ufdl;
  // Callback style: every response passes here, and almost none needs anything.
  app.addHook('onResponse', (request, _reply, done) => {
    if (closing.aborted) request.raw.socket?.end();
    done();
  });
}
