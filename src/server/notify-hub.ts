/**
 * In-process fan-out of job transitions: to web-socket watchers (`routes/ws.ts`), to list requests
 * waiting on `X-UFDL-Wait` (`routes/jobs.ts`), and to the metrics. The reference uses Redis channel
 * groups; one process needs only an EventEmitter.
 */
import { EventEmitter } from 'node:events';
import type { JobNotification } from '../protocol/wire.js';

export interface HubEvents {
  /** A transition happened on job `pk`; `message` is the web-socket frame for it. */
  transition: [pk: number, message: JobNotification];
  /** Some job may have become acquirable (created, released, reset, aborted). */
  acquirable: [];
  /** Job `pk` was created (the dashboard's feed shows it). */
  created: [pk: number];
}

export class NotifyHub extends EventEmitter<HubEvents> {
  constructor() {
    super();
    // Every waiting list request and every watcher adds a listener; thousands are normal.
    this.setMaxListeners(0);
  }

  /**
   * Resolve when a job may have become acquirable, or after `ms`. Returns whether it was woken.
   * The listener is removed either way, so abandoned waits do not leak.
   */
  waitForAcquirable(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.off('acquirable', onWake);
        signal?.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const onWake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.on('acquirable', onWake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
