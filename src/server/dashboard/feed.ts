/**
 * The dashboard's live feed: one web-socket (`GET /v1/ufdl-agent/events`, authenticated like the job
 * channel) that carries every job's creation, transitions, deletion and reinstatement as `{"type":
 * "job", "event": …, "job": <JobSummary>}`, so the jobs table updates without re-listing. Each event is read and serialised
 * once for all dashboards; a dashboard that falls too far behind is dropped (it reconnects and
 * re-reads its page), and so is one that stops answering pings, as on the job channel: a client that
 * stopped reading would otherwise hold its connection, and its unsent frames, for as long as it liked.
 * A replica that may have missed other replicas' events (`resync` on the hub) sends `{"type":
 * "resync"}`: the pages load their tables again.
 */
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { FeedFrame, FeedResyncFrame } from '../../protocol/dashboard.js';
import type { JobNotification } from '../../protocol/wire.js';
import type { JobDeletion } from '../notify-hub.js';
import { getJobRow, type JobRowShown } from '../store/job-json.js';
import { WebSocketKeepAlive } from '../ws-connections.js';
import { summaryOf } from './job-table.js';

export const FEED_PATH = '/v1/ufdl-agent/events';

/** Unsent bytes after which a dashboard is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function registerFeed(app: FastifyInstance): { add(socket: WebSocket, allowed?: () => boolean): void } {
  const ctx = app.ufdl;
  const sockets = new Set<WebSocket>();
  const broadcast = (pk: number, event: string, data?: Record<string, unknown>, committed?: JobRowShown) => {
    if (sockets.size === 0) return;
    // The row the transition left, when the event carries it: read now, the job may show writes made
    // since, not yet on disk (group commit, store/durability.ts), that a lost batch would undo.
    const row = committed ?? getJobRow(ctx.db, pk);
    if (!row) return;
    const frame: FeedFrame = { type: 'job', event, job: summaryOf(row) };
    if (data !== undefined && Object.keys(data).length > 0) frame.data = data;
    sendAll(JSON.stringify(frame));
  };
  const sendAll = (text: string) => {
    for (const socket of sockets) {
      if (socket.readyState !== socket.OPEN) continue;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
      else socket.send(text);
    }
  };
  const RESYNC_FRAME: FeedResyncFrame = { type: 'resync' };
  const onResync = () => sendAll(JSON.stringify(RESYNC_FRAME));
  const onTransition = (pk: number, message: JobNotification, row?: JobRowShown) => broadcast(pk, message.transition, message.transition_data, row);
  const onCreated = (pk: number, row?: JobRowShown) => broadcast(pk, 'created', undefined, row);
  // A hard-deleted job's row is gone: the event brings it as it was (on every replica).
  const onDeletion = (pk: number, change: JobDeletion, row?: JobRowShown) => broadcast(pk, change, undefined, row);
  ctx.hub.on('transition', onTransition);
  ctx.hub.on('created', onCreated);
  ctx.hub.on('deletion', onDeletion);
  ctx.hub.on('resync', onResync);
  const keepAlive = new WebSocketKeepAlive(ctx.options.idleTimeoutSeconds * 1000);
  app.addHook('onClose', async () => {
    keepAlive.close();
    ctx.hub.off('transition', onTransition);
    ctx.hub.off('created', onCreated);
    ctx.hub.off('deletion', onDeletion);
    ctx.hub.off('resync', onResync);
  });
  return {
    add(socket, allowed) {
      sockets.add(socket);
      keepAlive.watch(socket, allowed);
      socket.on('close', () => sockets.delete(socket));
      socket.on('message', () => {});
    },
  };
}
