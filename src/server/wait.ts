/**
 * The `X-UFDL-Wait` extension of `POST /v1/jobs/list` (DESIGN §3): when the list is empty, hold the
 * request until a job may have become acquirable (the hub's `acquirable` event), the wait ends, the
 * client goes away, or the server closes; then answer with the query re-run.
 */
import type { FastifyReply } from 'fastify';
import { UfdlError } from '../protocol/errors.js';
import { MAX_WAIT_SECONDS } from '../protocol/wire.js';
import type { NotifyHub } from './notify-hub.js';

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
 * A signal that fires when the client disconnects before the response is sent, or when `closing`
 * fires (server shutdown).
 */
export function requestGoneSignal(reply: FastifyReply, closing: AbortSignal): AbortSignal {
  const gone = new AbortController();
  if (closing.aborted) {
    gone.abort();
    return gone.signal;
  }
  // A plain listener removed when the response closes (it always does, finished or cut off), so a
  // long-lived `closing` signal does not collect one listener per request.
  const onClosing = () => gone.abort();
  closing.addEventListener('abort', onClosing, { once: true });
  reply.raw.once('close', () => {
    closing.removeEventListener('abort', onClosing);
    if (!reply.raw.writableFinished) gone.abort();
  });
  return gone.signal;
}

/**
 * Run `query`; while its result is empty and time is left, wait for the hub's `acquirable` event and
 * run it again. The query is synchronous and the wait is armed right after it without yielding, so
 * an event fired between a query and the next wait cannot be missed.
 */
export async function waitForNonEmpty<T>(hub: NotifyHub, query: () => T[], waitMs: number, signal: AbortSignal): Promise<T[]> {
  let result = query();
  if (result.length > 0 || waitMs <= 0) return result;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0 || signal.aborted) return result;
    const woken = await hub.waitForAcquirable(remaining, signal);
    if (!woken) return signal.aborted ? result : query();
    result = query();
    if (result.length > 0) return result;
  }
}
