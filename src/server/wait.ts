/**
 * The `X-UFDL-Wait` extension of `POST /v1/jobs/list`: when the list is empty, hold the request until
 * the wake-up hub wakes it for a job its filter has (`wake-up/wake-hub.ts`: one waiter per job), the
 * wait ends, the client goes away, or the server closes; then answer with the query re-run.
 */
import type { FastifyReply } from 'fastify';
import { UfdlError } from '../protocol/errors.js';
import { MAX_WAIT_SECONDS } from '../protocol/wire.js';
import type { Wait, WaitFilter, WakeHub } from './wake-up/wake-hub.js';

/**
 * Parse the header value: a non-negative decimal number of seconds. Values above
 * {@link MAX_WAIT_SECONDS} are capped (a client asking for more gets the most we give); anything
 * else is a 400. Returns milliseconds, 0 when the header is absent.
 */
export function parseWaitHeader(raw: string | string[] | undefined): number {
  if (raw === undefined) return 0;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  const trimmed = value.trim();
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(trimmed)) {
    throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Bad X-UFDL-Wait header '${value}': expected a number of seconds in [0, ${MAX_WAIT_SECONDS}]`);
  }
  return Math.round(Math.min(Number(trimmed), MAX_WAIT_SECONDS) * 1000);
}

/** Whether the client of a waiting request is still there, and how to hear that it left. */
export interface ClientPresence {
  connected(): boolean;
  /** Call `listener` once if the client goes away before the answer is sent; returns an unsubscriber. */
  onGone(listener: () => void): () => void;
}

/**
 * The presence of the client behind `reply`. One listener on this response's own `close`, nothing on
 * anything shared by all requests (thousands of waiting requests would pile listeners onto it).
 */
export function clientPresence(reply: FastifyReply): ClientPresence {
  const response = reply.raw;
  const socket = reply.request.raw.socket;
  return {
    connected: () => socket !== null && !socket.destroyed && socket.writable && !response.destroyed,
    onGone(listener) {
      const onClose = () => {
        if (!response.writableFinished) listener();
      };
      response.once('close', onClose);
      return () => response.off('close', onClose);
    },
  };
}

export interface WaitForJobsOptions {
  waitMs: number;
  /** The node the request acts as, when it names one. */
  node: number | null;
  client: ClientPresence;
}

/**
 * Run `query`; while its result is empty and time is left, wait in the wake-up hub's queue for
 * `filter` until woken for a job, and run it again. A waiter woken for a job that someone else took
 * meanwhile waits again in the place it had. The query is synchronous and the wait is queued right
 * after it without yielding, so a job made acquirable between the two cannot be missed. When the
 * time runs out, the query runs once more (a last look costs little); when the client has gone or
 * the server closes, the last result is the answer.
 */
export async function waitForJobs<T>(hub: WakeHub, filter: WaitFilter, query: () => T[], options: WaitForJobsOptions): Promise<T[]> {
  let result = query();
  if (result.length > 0 || options.waitMs <= 0) return result;
  const deadline = Date.now() + options.waitMs;
  let current: Wait | null = null;
  let gone = false;
  const unsubscribe = options.client.onGone(() => {
    gone = true;
    current?.cancel();
  });
  try {
    let seq: number | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return query();
      if (gone) return result;
      current = hub.wait({ filter, node: options.node, timeoutMs: remaining, connected: options.client.connected, ...(seq === undefined ? {} : { seq }) });
      seq = current.seq;
      const outcome = await current.outcome;
      current = null;
      if (outcome === 'expired') return query();
      if (outcome !== 'woken') return result;
      result = query();
      if (result.length > 0) return result;
    }
  } finally {
    unsubscribe();
  }
}
