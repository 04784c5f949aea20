/**
 * In-process fan-out of job events, emitted once the commit behind them is on disk: transitions to
 * web-socket watchers (`routes/ws.ts`) and the metrics; "a job became acquirable" and acquires to the
 * wake-up hub (`wake-up/wake-hub.ts`, wired in `app.ts`), which decides which waiting list request to
 * wake. The reference uses Redis channel groups; one process needs only an EventEmitter. Replicas
 * sharing one PostgreSQL database relay these events over LISTEN/NOTIFY (`store/postgres/hub-relay.ts`).
 */
import { EventEmitter } from 'node:events';
import type { JobNotification } from '../protocol/wire.js';
import type { JobRow } from './store/job-json.js';

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
  /** Bytes were appended to job `pk`'s live log (its followers read on). */
  logAppended: [pk: number];
}

export class NotifyHub extends EventEmitter<HubEvents> {
  /**
   * True while the hub re-emits an event that another replica emitted (`hub-relay.ts`). Work that
   * must happen once per event, not once per replica — such as writing the progress history into
   * the shared data directory — is the emitting replica's alone.
   */
  fromAnotherReplica = false;
}
