/**
 * The notify hub across replicas: every event a replica's hub emits (a transition for web-socket
 * watchers, a job that became acquirable for the wake-up hub, a job created, deleted or reinstated
 * for the dashboard) is
 * published on the PostgreSQL channel `ufdl_hub`, and every replica re-emits on its own hub what the
 * others published, so a node waiting on replica B wakes for a job created on A, and a watcher on B
 * sees A's transitions.
 *
 * Order: one replica publishes one event after the other, each once the one before is committed,
 * and PostgreSQL delivers notifications in commit order, so a replica's events arrive
 * everywhere in the order it emitted them (its hub emits transitions in commit order). A replica
 * ignores its own events (it emitted them already). A payload over PostgreSQL's 8000-byte limit
 * carries a shortened description and error (the rest of the message is small and bounded). A
 * deletion carries the job's row without its values: after a hard delete no replica can read it.
 *
 * Gaps: while the listening connection is replaced (a database restart, a killed session, a silent
 * connection found out by the check) the others' notifications are lost, and PostgreSQL keeps none
 * for a session that was not listening. Once the new connection listens, the relay emits `resync` on
 * the hub: what was missed is in the database, and the hub's listeners read it again from there.
 * Listening comes first, so whatever is committed after the re-read is heard as usual.
 *
 * The other gap is on the sending side: a notification whose publish fails (the statement's
 * connection broke just then, the statement timed out) would leave every other replica unaware of
 * the event for good. Each notification therefore carries its origin's number (`s`); a failed one
 * is tried again, and one given up is followed by a marker (`e: 'resync'`) tried until it goes
 * through, on which every other replica emits `resync` as after its own gap (`relay-publisher.ts`);
 * a receiver drops a repeated number (a retry whose first try did arrive) and catches up on a
 * missing one (`relay-sequence.ts`). A replica of an older version sends no numbers (its
 * notifications are taken as they come) and takes the marker for an event named `resync`, which
 * its hub's listeners answer the same way.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { JobNotification } from '../../../protocol/wire.js';
import type { JobDeletion, NotifyHub } from '../../notify-hub.js';
import type { JobRowShown } from '../job-json.js';
import { timedQuery } from './connection.js';
import { RelayPublisher } from './relay-publisher.js';
import { OriginSequences } from './relay-sequence.js';

export const HUB_CHANNEL = 'ufdl_hub';
const MAX_PAYLOAD_BYTES = 7900;
const SHORTENED_TEXT = 1000;

/** Live-log appends are relayed together, at most this often: one notification for many appends. */
const LOG_APPENDS_EVERY_MS = 50;
/** Job pks per notification of live-log appends (well within the payload limit). */
const LOG_APPENDS_PER_NOTIFICATION = 500;

export interface HubRelayTimings {
  /**
   * How long one of the relay's statements may take: a connection whose network went silent fails
   * after this instead of holding the relay's queue, or its close, until the kernel gives up.
   * @default 5000
   */
  statementTimeoutMs?: number;
  /**
   * How often the listening connection is asked to answer. It only ever receives, so a connection
   * that went silent (a network that drops packets rather than resetting) raises no error of its
   * own: the question finds it out, and the relay reconnects.
   * @default 10000
   */
  listenerCheckMs?: number;
}

/** An event as this replica relays it, before its origin and number are added. */
type RelayedEvent =
  | { e: 'transition'; pk: number; m: JobNotification }
  | { e: 'acquirable' | 'created'; pk: number }
  | { e: 'deletion'; pk: number; c: JobDeletion; r?: JobRowShown }
  | { e: 'logAppended'; pks: number[] };

/**
 * A notification: `o` the origin (drawn at each start), `s` its number there (absent from a
 * replica of an older version); `e: 'resync'` is the marker of events that origin could not relay.
 */
type Relayed = { o: string; s?: number } & (RelayedEvent | { e: 'resync' });

export class HubRelay {
  readonly origin = randomUUID();
  /** Jobs whose live logs grew since the last relay of appends. */
  readonly #appended = new Set<number>();
  #appendTimer: NodeJS.Timeout | undefined;
  readonly #publisher: RelayPublisher;
  readonly #sequences = new OriginSequences();
  #closed = false;
  #listener: pg.PoolClient | undefined;
  #reconnecting: Promise<void> | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  readonly #unsubscribe: () => void;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly hub: NotifyHub,
    private readonly log: Pick<Logger, 'warn' | 'error' | 'info'>,
    private readonly timings: HubRelayTimings,
  ) {
    this.#publisher = new RelayPublisher({
      send: (payload) => this.pool.query(this.#statement('SELECT pg_notify($1, $2)', [HUB_CHANNEL, payload])),
      marker: (s) => JSON.stringify({ o: this.origin, s, e: 'resync' } satisfies Relayed),
      log,
    });
    const onTransition = (pk: number, m: JobNotification) => this.#publish({ e: 'transition', pk, m });
    const onAcquirable = (pk: number) => this.#publish({ e: 'acquirable', pk });
    const onCreated = (pk: number) => this.#publish({ e: 'created', pk });
    const onDeletion = (pk: number, c: JobDeletion, row?: JobRowShown) => this.#publish({ e: 'deletion', pk, c, ...(row ? { r: shownOf(row) } : {}) });
    const onLogAppended = (pk: number) => this.#logAppended(pk);
    hub.on('transition', onTransition);
    hub.on('deletion', onDeletion);
    hub.on('acquirable', onAcquirable);
    hub.on('created', onCreated);
    hub.on('logAppended', onLogAppended);
    this.#unsubscribe = () => {
      hub.off('transition', onTransition);
      hub.off('acquirable', onAcquirable);
      hub.off('created', onCreated);
      hub.off('deletion', onDeletion);
      hub.off('logAppended', onLogAppended);
    };
  }

  /** Relay `hub` over `pool`: one of its connections listens; publishing takes any. */
  static async start(pool: pg.Pool, hub: NotifyHub, log: Pick<Logger, 'warn' | 'error' | 'info'>, timings: HubRelayTimings = {}): Promise<HubRelay> {
    const relay = new HubRelay(pool, hub, log, timings);
    await relay.#listen();
    return relay;
  }

  async #listen(): Promise<void> {
    const listener = await this.pool.connect();
    // Closed while connecting (a reconnect under way when the server stops): hand the connection
    // straight back, or the pool's end would wait for it forever.
    if (this.#closed) {
      listener.release();
      return;
    }
    // A connection that fails (a database restart, a killed session) is replaced; until then this
    // replica hears nothing from the others, and catches up once it listens again (`#resync`).
    listener.on('error', (err) => this.#lost(listener, err));
    listener.on('notification', (notification) => this.#receive(notification.payload));
    try {
      await listener.query(this.#statement(`LISTEN ${HUB_CHANNEL}`));
    } catch (err) {
      listener.release(err as Error);
      throw err;
    }
    if (this.#closed) {
      // Destroyed rather than pooled: the session still listens.
      listener.release(true);
      return;
    }
    this.#listener = listener;
    this.#checkTimer ??= setInterval(() => this.#checkListener(), this.timings.listenerCheckMs ?? 10_000).unref();
  }

  #lost(listener: pg.PoolClient, err: Error): void {
    if (this.#listener !== listener) return;
    this.#listener = undefined;
    // What the others number from now on is heard after a gap this replica catches up on anyway.
    this.#sequences.rebase();
    listener.release(err);
    if (this.#closed) return;
    this.log.warn({ err: err.message }, 'lost the connection that hears the other replicas; reconnecting');
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = undefined));
  }

  #statement(text: string, values: unknown[] = []): pg.QueryConfig {
    return timedQuery(text, values, this.timings.statementTimeoutMs ?? 5_000);
  }

  #checkListener(): void {
    const listener = this.#listener;
    if (!listener || this.#checking) return;
    this.#checking = true;
    listener
      .query(this.#statement('SELECT 1'))
      .catch((err: unknown) => this.#lost(listener, err instanceof Error ? err : new Error(String(err))))
      .finally(() => (this.#checking = false));
  }

  async #reconnect(): Promise<void> {
    for (let delayMs = 100; !this.#closed; delayMs = Math.min(delayMs * 2, 5_000)) {
      try {
        await this.#listen();
        if (this.#listener) {
          this.log.info('hearing the other replicas again; catching up on what they did meanwhile');
          this.#resync('the connection that hears the other replicas came back');
        }
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
      }
    }
  }

  /** Tell the hub's listeners that events may have been missed; they read the database again. */
  #resync(why: string): void {
    // One by one: a listener that fails (its read of the database failed) leaves the others theirs.
    for (const listener of this.hub.listeners('resync')) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, `a listener failed to catch up after ${why}`);
      }
    }
  }

  /** Appends come many a second per running job; followers elsewhere need only hear "read on" soon. */
  #logAppended(pk: number): void {
    if (this.hub.fromAnotherReplica || this.#closed) return;
    this.#appended.add(pk);
    this.#appendTimer ??= setTimeout(() => this.#flushAppends(), LOG_APPENDS_EVERY_MS);
  }

  #flushAppends(): void {
    this.#appendTimer = undefined;
    const pks = [...this.#appended];
    this.#appended.clear();
    for (let i = 0; i < pks.length; i += LOG_APPENDS_PER_NOTIFICATION) {
      this.#publish({ e: 'logAppended', pks: pks.slice(i, i + LOG_APPENDS_PER_NOTIFICATION) });
    }
  }

  #publish(event: RelayedEvent): void {
    if (this.hub.fromAnotherReplica || this.#closed) return;
    // One at a time: each notification is sent once the one before is committed, so the others
    // receive this replica's events in the order it emitted them, whichever connection sends them.
    this.#publisher.publish((s) => fitPayload({ o: this.origin, s, ...event }), { job: 'pk' in event ? event.pk : event.pks, event: event.e });
  }

  #receive(payload: string | undefined): void {
    if (payload === undefined) return;
    let event: Relayed;
    try {
      event = JSON.parse(payload) as Relayed;
    } catch {
      this.log.warn({ channel: HUB_CHANNEL }, 'ignored a notification that is not JSON');
      return;
    }
    if (event.o === this.origin) return;
    const heard = typeof event.s === 'number' ? this.#sequences.heard(event.o, event.s) : 'unnumbered';
    if (heard === 'repeat') return;
    if (event.e === 'resync') {
      this.log.warn({ origin: event.o }, 'another replica could not relay some of its hub events; catching up on them from the database');
      this.#resync('another replica could not relay its events');
      return;
    }
    this.#emit(event);
    if (heard === 'gap') {
      // Applied first: the catch-up then reads the database after it, and its news is never older.
      this.log.warn({ origin: event.o }, 'missed hub events of another replica; catching up on them from the database');
      this.#resync('missing hub events of another replica');
    }
  }

  #emit(event: RelayedEvent): void {
    this.hub.fromAnotherReplica = true;
    try {
      if (event.e === 'transition') this.hub.emit('transition', event.pk, event.m);
      else if (event.e === 'logAppended') for (const pk of event.pks) this.hub.emit('logAppended', pk);
      else if (event.e === 'deletion') this.hub.emit('deletion', event.pk, event.c, event.r);
      else this.hub.emit(event.e, event.pk);
    } catch (err) {
      this.log.error({ err, job: 'pk' in event ? event.pk : event.pks }, 'a listener failed on a relayed hub event');
    } finally {
      this.hub.fromAnotherReplica = false;
    }
  }

  /** Stop relaying; what was published before is delivered first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#checkTimer);
    this.#unsubscribe();
    clearTimeout(this.#appendTimer);
    await this.#publisher.close();
    const listener = this.#listener;
    this.#listener = undefined;
    if (!listener) return;
    try {
      await listener.query(this.#statement(`UNLISTEN ${HUB_CHANNEL}`));
      listener.release();
    } catch (err) {
      listener.release(err as Error);
    }
  }
}

/** The columns a summary shows, whatever else the row given carries (its values may be large). */
function shownOf(row: JobRowShown): JobRowShown {
  const { input_values: _inputs, parameter_values: _parameters, ...shown } = row as JobRowShown & { input_values?: unknown; parameter_values?: unknown };
  return shown;
}

const shorten = (text: string | undefined) => (text === undefined || text.length <= SHORTENED_TEXT ? text : `${text.slice(0, SHORTENED_TEXT)}…`);

function fitPayload(event: Relayed): string {
  const payload = JSON.stringify(event);
  if (Buffer.byteLength(payload) <= MAX_PAYLOAD_BYTES) return payload;
  if (event.e === 'deletion' && event.r) {
    // The rest of the row is numbers, times and the template's name.
    return JSON.stringify({ ...event, r: { ...event.r, description: shorten(event.r.description)!, error_reason: shorten(event.r.error_reason ?? undefined) ?? null } });
  }
  if (event.e !== 'transition') return payload;
  const m: JobNotification = { ...event.m, description: shorten(event.m.description)!, transition_data: {} };
  const error = shorten(event.m.error);
  if (error !== undefined) m.error = error;
  return JSON.stringify({ ...event, m });
}
