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

/**
 * Parse `X-UFDL-Limit`: a positive integer number of items. Anything else is a 400. Returns
 * undefined when the header is absent.
 */
export function parseLimitHeader(raw: string | string[] | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = (Array.isArray(raw) ? raw.join(',') : raw).trim();
  if (!/^\d{1,9}$/.test(value) || Number(value) === 0) {
    throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Bad X-UFDL-Limit header '${value}': expected a whole number of items, at least 1`);
  }
  return Number(value);
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

export interface WaitForJobsOptions<T> {
  waitMs: number;
  /**
   * Whether a non-empty result has something for this request, which was last woken for job
   * `wokenFor` (null: not woken); when not (every job in it is being offered to another woken node),
   * the request keeps waiting. @default any non-empty result
   */
  worthAnswering?: (result: T[], wokenFor: number | null) => boolean;
  /**
   * A `recheck` found a result worth answering: take the offer on a job of it that nobody is being
   * offered ({@link WakeHub.claim}), so that the requests rechecking after this one leave it alone.
   */
  claim?: (result: T[]) => void;
  /** The node the request acts as, when it names one. */
  node: number | null;
  /** The user the request is made by: its waits count against that user's allowance in the hub. */
  user?: number;
  /** The hub declined to hold the request (its user's allowance is used up): the result is answered now. */
  onDeclined?: (why: string) => void;
  client: ClientPresence;
}

/** How often a request past its wait looks again while its result is being handed to other nodes. */
const OVERTIME_STEP_MS = 50;

/**
 * Run `query`; while its result is empty (or not {@link WaitForJobsOptions.worthAnswering}) and time
 * is left, wait in the wake-up hub's queue for `filter` until woken for a job, and run it again. The
 * answer is always the query's whole result. A waiter woken for a job that someone else took
 * meanwhile waits again in the place it had. The query is synchronous and the wait is queued right
 * after it without yielding, so a job made acquirable between the two cannot be missed.
 *
 * When the time runs out the query runs once more and answers — unless every job it lists is being
 * offered to another woken node: then the answer waits until those nodes have taken them (tens of
 * milliseconds), at most the hub's offer grace, so that thousands of nodes whose waits run out at
 * random moments do not each race the woken node for the newest job. When the client has gone, the
 * server closes, or the hub declines to hold the request (its user waits on too many distinct
 * filters already), the last result is the answer. When the hub asks for a recheck (events that
 * would have woken the request may have been missed), the query runs again at once.
 */
export async function waitForJobs<T>(hub: WakeHub, filter: WaitFilter, query: () => T[], options: WaitForJobsOptions<T>): Promise<T[]> {
  let wokenFor: number | null = null;
  const worthAnswering = (r: T[]) => r.length > 0 && (options.worthAnswering?.(r, wokenFor) ?? true);
  let result = query();
  if (options.waitMs <= 0 || worthAnswering(result)) return result;
  const deadline = Date.now() + options.waitMs;
  const overtimeEnd = deadline + hub.offerGraceMs;
  let current: Wait | null = null;
  let gone = false;
  const unsubscribe = options.client.onGone(() => {
    gone = true;
    current?.cancel();
  });
  try {
    // The first arrival, kept while the request is woken for jobs that others take.
    let seq: number | undefined;
    let timeUp = false;
    for (;;) {
      if (gone) return result;
      let timeoutMs = deadline - Date.now();
      let keepPlace = seq !== undefined;
      if (timeUp || timeoutMs <= 0) {
        timeUp = true;
        result = query();
        if (result.length === 0 || worthAnswering(result) || Date.now() >= overtimeEnd) return result;
        timeoutMs = Math.min(OVERTIME_STEP_MS, overtimeEnd - Date.now());
        // Its place no longer matters, and finding it again in a long queue would cost a walk.
        keepPlace = false;
      }
      current = hub.wait({
        filter,
        node: options.node,
        ...(options.user === undefined ? {} : { user: options.user }),
        timeoutMs,
        connected: options.client.connected,
        ...(keepPlace ? { seq: seq! } : {}),
      });
      seq ??= current.seq;
      const outcome = await current.outcome;
      if (outcome === 'declined') options.onDeclined?.(current.declined ?? 'declined');
      if (outcome === 'expired') {
        // A timer may fire a millisecond before the wall clock says the deadline has come.
        timeUp = true;
        continue;
      }
      if (outcome === 'recheck') {
        // Events may have been missed (the hub's `recheck`): look again, as if woken for nothing.
        current = null;
        result = query();
        if (worthAnswering(result)) {
          options.claim?.(result);
          return result;
        }
        continue;
      }
      if (outcome !== 'woken') return result;
      wokenFor = current.wokenFor;
      current = null;
      result = query();
      if (worthAnswering(result)) return result;
    }
  } finally {
    unsubscribe();
  }
}
