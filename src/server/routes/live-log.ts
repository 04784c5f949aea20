/**
 * The live job log extension (docs/COMPATIBILITY.md, "Live job logs"); registered only when
 * extensions are on:
 *
 * - `POST /v1/jobs/{pk}/log?offset=N&max_bytes=C`: the node working the job appends raw bytes at
 *   offset N (idempotent; a gap is 416 with the length to resend from).
 * - `GET /v1/jobs/{pk}/log?offset=N`: the contiguous bytes from N (the job's creator or an admin);
 *   the same path upgraded to a web-socket follows the log live.
 * - `GET /v1/jobs/{pk}/progress-history`: the job's progress points, for the dashboard's curves.
 */
import { forbidden } from '../../protocol/error-constructors.js';
import { open } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { UfdlError } from '../../protocol/errors.js';
import { LOG_HEADERS, MAX_APPEND_BYTES, MIN_LOG_MAX_BYTES } from '../../protocol/live-log.js';
import type { JobNotification } from '../../protocol/wire.js';
import type { CallerUser, ServerContext } from '../context.js';
import type { JobDeletion } from '../notify-hub.js';
import { requireNode, requireUser } from '../identity.js';
import { LogFollower } from '../live-log/follow.js';
import { AttemptKeys } from '../live-log/attempt-keys.js';
import { ProgressHistory } from '../live-log/progress-history.js';
import { LiveLogStore, type LogKey } from '../live-log/store.js';
import { getJobRow, requireJobRow, type JobRow } from '../store/job-json.js';
import { jobPhase } from '../store/notifications.js';
import { JOB_PATH, jobPk } from './jobs.js';
import { authenticateWatcher, revocationCheck } from './ws.js';

const LOG_PATH = `${JOB_PATH}/log`;
/** Largest contiguous piece one GET answers with; the reader asks again from where it ends. */
const GET_PIECE_BYTES = 16 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    liveLogs: LiveLogStore;
  }
}

function keyOf(row: JobRow): LogKey {
  return { pk: row.pk, startTime: row.start_time };
}

function hasEnded(row: JobRow): boolean {
  const phase = jobPhase(row);
  return phase !== 'CREATED' && phase !== 'STARTED';
}

/** A query value as a non-negative integer; 400 naming it otherwise. */
function intQuery(request: FastifyRequest, name: string, fallback?: number): number {
  const raw = (request.query as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined && fallback !== undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) {
    throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Query parameter '${name}' must be a non-negative integer, got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** A job's log may be read by its creator and by admins (it may hold what the job printed of its secrets). */
function requireReadable(user: CallerUser | null, row: JobRow): void {
  if (!user) throw new UfdlError('UFDL_ERR_AUTH_MISSING', 'Authentication credentials were not provided.');
  if (!user.is_staff && row.creator !== user.pk) throw forbidden(`Only the creator of job ${row.pk} or an admin may read its log.`);
}

function beyondEnd(pk: number, length: number): UfdlError {
  return new UfdlError('UFDL_ERR_LOG_GAP', `The log of job ${pk} is ${length} bytes long; read from an offset up to ${length}`, { extra: { length } });
}

/** The append route, in its own scope: only here is the body raw bytes. */
async function appendRoute(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_APPEND_BYTES }, (_request, body, done) => done(null, body));

  app.post(LOG_PATH, async (request) => {
    const node = requireNode(request);
    const offset = intQuery(request, 'offset');
    const maxBytes = intQuery(request, 'max_bytes');
    if (maxBytes < MIN_LOG_MAX_BYTES) throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `max_bytes must be at least ${MIN_LOG_MAX_BYTES}, got ${maxBytes}`);
    const row = requireJobRow(ctx.db, jobPk(request));
    const phase = jobPhase(row);
    // The node that runs the job, while it runs (or is being stopped after a cancel).
    if (row.node !== node.pk || row.start_time === null || (phase !== 'STARTED' && phase !== 'CANCELLED')) {
      throw new UfdlError('UFDL_ERR_JOB_NOT_WORKING', `Node ${node.pk} is not running job ${row.pk} (phase ${phase}); only the node running a job appends to its log`);
    }
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    return { length: await app.liveLogs.append(keyOf(row), offset, body, maxBytes) };
  });
}

export async function liveLogRoutes(app: FastifyInstance): Promise<void> {
  const ctx: ServerContext = app.ufdl;
  const store = app.liveLogs;
  const history = new ProgressHistory(ctx.db, (key) => store.attemptDir(key));
  const followers = new Map<number, Set<LogFollower>>();
  const pokeFollowers = (pk: number) => {
    for (const follower of followers.get(pk) ?? []) follower.poke();
  };
  const onLogAppended = (pk: number) => {
    if (ctx.hub.fromAnotherReplica) store.appendedElsewhere(pk);
    pokeFollowers(pk);
  };
  const attempts = new AttemptKeys(ctx.db, { remember: ctx.options.databaseUrl === undefined });
  const onTransition = (pk: number, message: JobNotification) => {
    if (message.transition !== 'progress') {
      attempts.forget(pk);
      history.forget(pk);
    }
    // Replicas share the data directory: the replica where the progress was reported records it.
    else if (!ctx.hub.fromAnotherReplica) {
      const key = attempts.keyOf(pk);
      if (key) history.record(key, message.progress, message.transition_data).catch((err: unknown) => ctx.log.warn({ err, job: pk }, 'could not record the progress history'));
    }
    pokeFollowers(pk);
  };
  // A hard-deleted job's followers waited for bytes that never come: told, each finds the job gone
  // and closes (1008, as one that connects now is answered). Its log goes from the data directory with
  // it, removed once, by the replica that deleted it (replicas share the directory).
  const onDeletion = (pk: number, change: JobDeletion) => {
    if (change !== 'hard-delete') return;
    attempts.forget(pk);
    history.forget(pk);
    pokeFollowers(pk);
    if (ctx.hub.fromAnotherReplica) store.appendedElsewhere(pk);
    else store.remove(pk).catch((err: unknown) => ctx.log.warn({ err, job: pk }, 'could not remove the live log of a hard-deleted job'));
  };
  // Appends and transitions made on other replicas may have been missed (`resync`): every log may
  // have grown and every job may have moved on. The caches are dropped, and every follower reads on
  // from its offset (a reset or an end shows in the job's row).
  const onResync = () => {
    store.changedElsewhere();
    for (const pk of followers.keys()) {
      attempts.forget(pk);
      history.forget(pk);
      pokeFollowers(pk);
    }
  };
  // Appends reach followers through the hub, so that followers on other replicas hear them too.
  const onAppended = (pk: number) => ctx.hub.emit('logAppended', pk);
  ctx.hub.on('transition', onTransition);
  ctx.hub.on('deletion', onDeletion);
  ctx.hub.on('logAppended', onLogAppended);
  ctx.hub.on('resync', onResync);
  store.on('appended', onAppended);
  app.addHook('onClose', async () => {
    ctx.hub.off('transition', onTransition);
    ctx.hub.off('deletion', onDeletion);
    ctx.hub.off('logAppended', onLogAppended);
    ctx.hub.off('resync', onResync);
    store.off('appended', onAppended);
    // Points recorded from the last notifications are written before the database closes.
    await history.close();
  });

  await app.register(appendRoute);

  app.route({
    method: 'GET',
    url: LOG_PATH,
    // Runs before the upgrade, so a refusal is a plain HTTP answer (400, 401, 403, 404, 416).
    preHandler: async (request) => {
      if (!request.ws) return;
      const user = await authenticateWatcher(app, request);
      const row = requireJobRow(ctx.db, jobPk(request));
      requireReadable(user, row);
      const offset = intQuery(request, 'offset', 0);
      const { length } = await store.info(keyOf(row));
      if (offset > length) throw beyondEnd(row.pk, length);
    },
    handler: async (request, reply) => sendPiece(request, reply),
    wsHandler: (socket: WebSocket, request) => follow(socket, request),
  });

  /** A follower of the request's job on `socket`, once its handshake is done. */
  function follow(socket: WebSocket, request: FastifyRequest): void {
    const pk = jobPk(request);
    const row = getJobRow(ctx.db, pk);
    if (!row) {
      // Hard-deleted since the pre-handler read it. Told once the delete is on disk (group commit):
      // a power cut could yet bring the job back. Should the delete not commit at all, look again.
      ctx.durable.afterSync(() => socket.close(1008, 'job not found'), () => follow(socket, request));
      return;
    }
    const current = () => {
      const now = getJobRow(ctx.db, pk);
      return now && { key: keyOf(now), ended: hasEnded(now) };
    };
    const onDisk = () => ctx.durable.syncAfterCommit();
    const follower = new LogFollower(socket, store, { current, onDisk }, { key: keyOf(row), offset: intQuery(request, 'offset', 0) }, {
      allowed: revocationCheck(ctx.db, request.user),
      // As every other web-socket of the server: pinged, and its user checked, each idle timeout.
      pingIntervalMs: ctx.options.idleTimeoutSeconds * 1000,
    });
    let set = followers.get(pk);
    if (!set) followers.set(pk, (set = new Set()));
    set.add(follower);
    socket.on('close', () => {
      set.delete(follower);
      if (set.size === 0 && followers.get(pk) === set) followers.delete(pk);
    });
    // Nothing here may reject unhandled: that would end the server. A log that cannot be looked up
    // (its files unreadable) ends this follower alone.
    // The row was read just now: the `start` frame tells of it once it is on disk (group commit).
    onDisk().then(
      () =>
        store.info(keyOf(row)).then(
          (info) => follower.start({ length: info.length, complete: hasEnded(row), maxBytes: info.maxBytes }),
          (err: unknown) => {
            ctx.log.warn({ err, job: pk }, 'could not look up the live log for a follower');
            follower.close();
            socket.close(1011, 'the log could not be read');
          },
        ),
      () => {
        // The sync failed, or what was read never committed: the follower may connect again.
        follower.close();
        socket.close(1011, 'the server could not make its state durable');
      },
    );
  }

  async function sendPiece(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const user = requireUser(request);
    const row = requireJobRow(ctx.db, jobPk(request));
    requireReadable(user, row);
    const offset = intQuery(request, 'offset', 0);
    const key = keyOf(row);
    const info = await store.info(key);
    if (offset > info.length) throw beyondEnd(row.pk, info.length);
    // Opened before any header is sent: a tail cell may be rotated away between the look-up and
    // the read, and then the look-up is simply made again.
    let piece = await store.piece(key, offset, GET_PIECE_BYTES);
    let handle = piece.length === 0 ? undefined : await open(piece.file, 'r').catch(() => undefined);
    if (piece.length > 0 && !handle) {
      piece = await store.piece(key, offset, GET_PIECE_BYTES);
      handle = piece.length === 0 ? undefined : await open(piece.file, 'r');
    }
    void reply
      .header('content-type', 'application/octet-stream')
      .header('cache-control', 'no-store')
      .header(LOG_HEADERS.offset, String(piece.offset))
      .header(LOG_HEADERS.length, String(info.length))
      .header(LOG_HEADERS.complete, String(hasEnded(row)))
      .header('content-length', String(piece.length));
    if (info.maxBytes !== null) void reply.header(LOG_HEADERS.maxBytes, String(info.maxBytes));
    if (info.dropped) void reply.header(LOG_HEADERS.dropped, `${info.dropped.from}-${info.dropped.to}`);
    if (!handle) return reply.send(Buffer.alloc(0));
    return reply.send(handle.createReadStream({ start: piece.position, end: piece.position + piece.length - 1 }));
  }

  app.get(`${JOB_PATH}/progress-history`, async (request) => {
    requireUser(request);
    const row = requireJobRow(ctx.db, jobPk(request));
    return history.read(keyOf(row));
  });
}
