/**
 * `GET /v1/jobs/{pk}`: retrieve over HTTP, and the web-socket notification channel on the same path.
 * One route serves both because @fastify/websocket dispatches an upgrade
 * to the `wsHandler` of the route that matches.
 *
 * Deviations (docs/COMPATIBILITY.md): watchers authenticate (B15) with `?token=<access>` or `Authorization:
 * Bearer`, unless `allowAnonymousWebsocket`; any job can be watched (no web-socket notification
 * needs to have been requested at creation); the catch-up message goes only to the new watcher (the
 * reference broadcasts it to the whole group); an unknown job is refused with 404 before the upgrade.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { UfdlError } from '../../protocol/errors.js';
import type { Phase } from '../../protocol/phase.js';
import type { JobNotification } from '../../protocol/wire.js';
import type { CallerUser } from '../context.js';
import type { JobDeletion } from '../notify-hub.js';
import { requireUser, stillAuthenticated, tokenUser } from '../identity.js';
import { getJobRow, loadJobJson, requireJobRow, type JobRow } from '../store/job-json.js';
import type { Db } from '../store/db.js';
import { catchUpTransition, jobPhase, notificationFor } from '../store/notifications.js';
import { WebSocketKeepAlive } from '../ws-connections.js';
import { JOB_PATH, jobPk } from './jobs.js';

/** A watcher that falls this far behind (unsent bytes) is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * Watchers by job pk, fed by one hub listener; each message is serialised once for all watchers.
 * Each watcher's phase is the one its last message told it of (none yet: nothing told), which a
 * catch-up after a gap in the events (`resync`) needs: see {@link resyncMessage}.
 */
class Watchers {
  readonly #byJob = new Map<number, Map<WebSocket, Phase | null>>();

  add(pk: number, socket: WebSocket, told: Phase | null): void {
    let sockets = this.#byJob.get(pk);
    if (!sockets) this.#byJob.set(pk, (sockets = new Map()));
    sockets.set(socket, told);
  }

  remove(pk: number, socket: WebSocket): void {
    const sockets = this.#byJob.get(pk);
    if (!sockets) return;
    sockets.delete(socket);
    if (sockets.size === 0) this.#byJob.delete(pk);
  }

  /** The jobs watched now. */
  jobs(): number[] {
    return [...this.#byJob.keys()];
  }

  /** Close every watcher of job `pk` (they leave the set as their sockets close). */
  close(pk: number, code: number, reason: string): void {
    for (const socket of this.#byJob.get(pk)?.keys() ?? []) socket.close(code, reason);
  }

  broadcast(pk: number, message: JobNotification): void {
    const sockets = this.#byJob.get(pk);
    if (!sockets) return;
    const frame = JSON.stringify(message);
    const told = phaseAfter(message);
    for (const socket of sockets.keys()) {
      sockets.set(socket, told);
      send(socket, frame);
    }
  }

  /** Tell each watcher of job `pk` what `messageFor` makes of the phase it was last told of (none: nothing). */
  catchUp(pk: number, messageFor: (told: Phase | null) => JobNotification | undefined): void {
    for (const [socket, told] of this.#byJob.get(pk) ?? []) {
      const message = messageFor(told);
      if (message === undefined) continue;
      this.#byJob.get(pk)?.set(socket, phaseAfter(message));
      send(socket, JSON.stringify(message));
    }
  }
}

/** The phase a job is in after the transition `message` tells of (its `cancelled` flag wins). */
function phaseAfter(message: JobNotification): Phase {
  if (message.cancelled) return 'CANCELLED';
  switch (message.transition) {
    case 'start':
    case 'progress':
      return 'STARTED';
    case 'finish':
      return 'FINISHED';
    case 'error':
      return 'ERRORED';
    case 'cancel':
      return 'CANCELLED';
    default:
      return 'CREATED';
  }
}

function send(socket: WebSocket, frame: string): void {
  if (socket.readyState !== socket.OPEN) return;
  if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
    socket.terminate();
    return;
  }
  socket.send(frame);
}

/**
 * What a watcher is told of where job `row` is when it joins (none while the job waits to start), as
 * the reference replays it; and again after this replica may have missed transitions made elsewhere.
 */
function catchUpMessage(row: JobRow): JobNotification | undefined {
  const transition = catchUpTransition(row);
  return transition && notificationFor(row, transition, {});
}

/**
 * What a watcher last told of phase `told` is told after this replica may have missed transitions
 * made elsewhere: where job `row` is now, as on joining. A job back in CREATED, which joining tells
 * nothing of, is told by the transition that must have brought it back, so that its watchers (an
 * agent running it, a job page) learn that it was taken away: `abort` from STARTED (an admin, or the
 * lost-node sweep), `reset` from an ended phase.
 */
function resyncMessage(row: JobRow, told: Phase | null): JobNotification | undefined {
  if (jobPhase(row) !== 'CREATED') return catchUpMessage(row);
  if (told === null || told === 'CREATED') return undefined;
  return notificationFor(row, told === 'STARTED' ? 'abort' : 'reset', {});
}

/** The prefix of a subprotocol that carries an access token: `Sec-WebSocket-Protocol: ufdl, bearer.<token>`. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** The token a handshake offers as a subprotocol `bearer.<token>`, if any. */
function protocolToken(request: FastifyRequest): string | undefined {
  const header = request.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return undefined;
  const entry = header.split(',').map((p) => p.trim()).find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  return entry?.slice(BEARER_PROTOCOL_PREFIX.length);
}

/**
 * The subprotocol the server answers with (browsers fail a handshake that offered protocols and got
 * none back): the first offered one that is not a token, else the token entry itself.
 */
export function chooseProtocol(offered: Set<string>): string | false {
  const all = [...offered];
  return all.find((p) => !p.startsWith(BEARER_PROTOCOL_PREFIX)) ?? all[0] ?? false;
}

/**
 * B15: the upgrade needs a user, from the Authorization header (resolved by the identity hook), from
 * `?token=`, or from a subprotocol `bearer.<token>` (browsers can set neither headers nor, safely,
 * query strings that end up in access logs; they can offer subprotocols). Anonymous (null) only when
 * configured. The live-log follower and the dashboard's feed authenticate their sockets the same way.
 */
/** What a web-socket's keep-alive asks of its user (see `stillAuthenticated`); none for an anonymous watcher. */
export function revocationCheck(db: Db, user: CallerUser | null): (() => boolean) | undefined {
  return user === null ? undefined : () => stillAuthenticated(db, user);
}

export async function authenticateWatcher(app: FastifyInstance, request: FastifyRequest): Promise<CallerUser | null> {
  if (request.user) return request.user;
  const query = (request.query as Record<string, unknown> | undefined)?.token;
  const token = typeof query === 'string' && query !== '' ? query : protocolToken(request);
  if (token !== undefined && token !== '') {
    // Kept on the request: the web-socket's keep-alive checks this user again (ws-connections.ts).
    request.user = tokenUser(app.ufdl.db, await app.ufdl.tokens.verify(token, 'access'));
    return request.user;
  }
  if (app.ufdl.options.allowAnonymousWebsocket) return null;
  throw new UfdlError(
    'UFDL_ERR_AUTH_MISSING',
    'Authentication credentials were not provided: send ?token=<access token>, an Authorization header, or the subprotocol bearer.<access token>.',
  );
}

export async function websocketRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  const watchers = new Watchers();
  const onTransition = (pk: number, message: JobNotification) => watchers.broadcast(pk, message);
  // A hard-deleted job has nothing more to tell: its watchers are told it is gone, as one that
  // connects now is (404). The event comes once the delete is on disk.
  const onDeletion = (pk: number, change: JobDeletion) => {
    if (change === 'hard-delete') watchers.close(pk, 1008, 'job not found');
  };
  // Transitions made on other replicas may have been missed (`resync`): every watcher is told where
  // its job is now, as on joining, and a job hard-deleted meanwhile closes its watchers.
  const catchUp = (pk: number) => {
    let row: JobRow | undefined;
    try {
      row = getJobRow(ctx.db, pk);
    } catch (err) {
      // The database failed the read: its watchers reconnect, and joining tells them where it is.
      ctx.log.warn({ err, job: pk }, 'could not read a watched job to catch its watchers up');
      watchers.close(pk, 1011, 'the server could not read the job; connect again');
      return;
    }
    // Told once what the row shows is on disk, as on joining; should it not commit, read again.
    ctx.durable.afterSync(() => {
      if (!row) watchers.close(pk, 1008, 'job not found');
      else watchers.catchUp(pk, (told) => resyncMessage(row, told));
    }, () => catchUp(pk));
  };
  const onResync = () => {
    for (const pk of watchers.jobs()) catchUp(pk);
  };
  ctx.hub.on('transition', onTransition);
  ctx.hub.on('deletion', onDeletion);
  ctx.hub.on('resync', onResync);
  const keepAlive = new WebSocketKeepAlive(ctx.options.idleTimeoutSeconds * 1000);
  app.addHook('onClose', async () => {
    ctx.hub.off('transition', onTransition);
    ctx.hub.off('deletion', onDeletion);
    ctx.hub.off('resync', onResync);
    keepAlive.close();
  });

  app.route({
    method: 'GET',
    url: JOB_PATH,
    // Runs before the upgrade, so a refusal is a plain HTTP answer (401, 404) to the handshake.
    preHandler: async (request) => {
      if (!request.ws) return;
      await authenticateWatcher(app, request);
      requireJobRow(ctx.db, jobPk(request));
    },
    handler: async (request) => {
      requireUser(request);
      return loadJobJson(ctx.db, jobPk(request));
    },
    wsHandler: (socket, request) => {
      const pk = jobPk(request);
      keepAlive.watch(socket, revocationCheck(ctx.db, request.user));
      // Client frames carry nothing we act on; they are read and dropped.
      socket.on('message', () => {});
      const join = () => {
        if (socket.readyState !== socket.OPEN) return;
        const row = getJobRow(ctx.db, pk);
        if (!row) {
          // Hard-deleted between the pre-handler and the upgrade. Told once the delete is on disk
          // (group commit), as its watchers are: a power cut could yet bring the job back. Should the
          // delete not commit at all, look again.
          ctx.durable.afterSync(() => {
            if (socket.readyState === socket.OPEN) socket.close(1008, 'job not found');
          }, join);
          return;
        }
        // The row may show commits not yet on disk (group commit, store/durability.ts): the catch-up
        // waits for the sync that covers them, as every event does. The watcher joins at that moment,
        // not now: deferred events run in commit order, so the events of transitions this row already
        // shows run before (and are not sent twice), and those of later ones after (and are sent).
        // Should those commits be lost (a batch that did not commit), the row showed what never
        // happened: it is read again, and the watcher joins after the sync that covers that read.
        ctx.durable.afterSync(() => {
          if (socket.readyState !== socket.OPEN) return;
          const message = catchUpMessage(row);
          watchers.add(pk, socket, message ? phaseAfter(message) : null);
          socket.on('close', () => watchers.remove(pk, socket));
          if (message) send(socket, JSON.stringify(message));
        }, join);
      };
      join();
    },
  });
}
