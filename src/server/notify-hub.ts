/**
 * In-process fan-out of job events, emitted once the commit behind them is on disk: transitions to
 * web-socket watchers (`routes/ws.ts`) and the metrics; "a job became acquirable" and acquires to the
 * wake-up hub (`wake-up/wake-hub.ts`, wired in `app.ts`), which decides which waiting list request to
 * wake. The reference uses Redis channel groups; one process needs only an EventEmitter. Replicas
 * sharing one PostgreSQL database relay these events over LISTEN/NOTIFY (`store/postgres/hub-relay.ts`),
 * and a replica that may have missed some of them (its listening connection was replaced, or another
 * replica could not publish them) emits `resync` for its listeners to catch up from the database.
 */
import { EventEmitter } from 'node:events';
import type { JobNotification } from '../protocol/wire.js';
import type { JobRow, JobRowShown } from './store/job-json.js';

/**
 * What happened to whether a job is listed: soft-deleted (`delete`: lists leave it out), reinstated
 * (`reinstate`: listed again), or hard-deleted (`hard-delete`: gone for good).
 */
export type JobDeletion = 'delete' | 'reinstate' | 'hard-delete';

export interface HubEvents {
  /**
   * A transition happened on job `pk`; `message` is the web-socket frame for it. `row` is the job as
   * the transition left it, given when the transition was made in this process (not relayed from
   * another replica): by the time the event is emitted the database may already show later writes
   * that are not yet on disk, which a listener must not reveal.
   */
  transition: [pk: number, message: JobNotification, row?: JobRow];
  /** Job `pk` may have become acquirable (created, released, reset, aborted). */
  acquirable: [pk: number];
  /** Job `pk` was created (the dashboard's feed shows it); `row` as for `transition`. */
  created: [pk: number, row?: JobRow];
  /**
   * Job `pk` was soft-deleted, reinstated or hard-deleted (the dashboard's feed shows it; a hard
   * delete ends the job's log followers). `row` as for `transition`; after a hard delete it is the job
   * as it was, and comes with the event on every replica, since no replica can read it any more.
   */
  deletion: [pk: number, change: JobDeletion, row?: JobRowShown];
  /** Bytes were appended to job `pk`'s live log (its followers read on). */
  logAppended: [pk: number];
  /**
   * Events from the other replicas may have been missed: this replica's listening connection was
   * lost and is back, or another replica could not publish some of its events (`hub-relay.ts`).
   * Whoever keeps state from the events reads the database (or the shared data directory) again:
   * watchers get their job's current state, waiting lists run again, dashboards reload, log
   * followers read on. Never relayed as such: each replica has its own gaps (a replica that lost its
   * own events relays a marker of that, on which the others emit this).
   */
  resync: [];
}

export class NotifyHub extends EventEmitter<HubEvents> {
  /**
   * True while the hub re-emits an event that another replica emitted (`hub-relay.ts`). Work that
   * must happen once per event, not once per replica — such as writing the progress history into
   * the shared data directory — is the emitting replica's alone.
   */
  fromAnotherReplica = false;
}
