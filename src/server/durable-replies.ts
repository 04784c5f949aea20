/**
 * Group commit, the HTTP side (`store/durability.ts`): no answer leaves the server before the
 * commits it may reflect are on disk. One `onSend` hook covers every route, writing or not, so no
 * write path can forget it; a reply costs nothing extra when nothing was committed since the last
 * sync. If the sync fails, the answer is replaced by 503 `UFDL_ERR_SERVER_NOT_DURABLE`: the client
 * must not take the transition as done (it may or may not survive), and retries.
 */
import type { FastifyInstance } from 'fastify';
import { ERROR_CODES } from '../protocol/errors.js';
import type { DurableBarrier } from './store/durability.js';
import { loggableUrl } from './loggable-url.js';

const NOT_DURABLE_STATUS = ERROR_CODES.UFDL_ERR_SERVER_NOT_DURABLE.status;
const NOT_DURABLE_BODY = JSON.stringify({
  detail: 'The server could not make its database durable (a disk sync failed); the outcome of this request is unknown. Retry later.',
});

export function registerDurableReplies(app: FastifyInstance, barrier: DurableBarrier): void {
  // Callback style: most replies find nothing to wait for, and skip a promise.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (barrier.isDurable()) {
      done(null, payload);
      return;
    }
    barrier.syncAfterCommit().then(
      () => done(null, payload),
      (err: unknown) => {
        request.log.error({ err, method: request.method, url: loggableUrl(request.url) }, 'disk sync failed; answering 503');
        if (payload !== null && typeof payload === 'object' && 'destroy' in payload && typeof payload.destroy === 'function') {
          payload.destroy();
        }
        reply.code(NOT_DURABLE_STATUS);
        reply.removeHeader('content-length');
        reply.removeHeader('content-disposition');
        reply.header('content-type', 'application/json; charset=utf-8');
        done(null, NOT_DURABLE_BODY);
      },
    );
  });
}
