/**
 * The retry policy of idempotent calls: jittered exponential back-off, a bounded number of attempts
 * and a bounded total time. Only transient failures are retried: no
 * response, a timeout, or 502/503/504 (see {@link ClientError.transient}).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientError, errorFromNetwork } from './errors.js';
import type { ClientLogger } from './options.js';

export interface RetryPolicy {
  attempts: number;
  totalMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Delay before retry number `retry` (0 for the first retry): "equal jitter", half fixed and half
 * random, of `min(max, base · 2^retry)`, so nodes that failed together do not retry together and no
 * delay collapses to zero.
 */
export function backoffDelayMs(retry: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(retry, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

export interface RetryContext {
  /** For log lines: `GET v1/jobs/5`. */
  what: string;
  log: ClientLogger;
  signal?: AbortSignal | undefined;
}

/**
 * Run `attempt` until it succeeds, fails with a non-transient error, or the policy is exhausted; the
 * last error is thrown. A server's `Retry-After` (capped at `maxDelayMs`) replaces the back-off delay.
 */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, policy: RetryPolicy, ctx: RetryContext): Promise<T> {
  const startedAt = Date.now();
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof ClientError) || !err.transient) throw err;
      if (n + 1 >= policy.attempts) throw err;
      const backoff = backoffDelayMs(n, policy.baseDelayMs, policy.maxDelayMs);
      const delay = err.retryAfterMs === undefined ? backoff : Math.min(err.retryAfterMs, policy.maxDelayMs);
      if (Date.now() - startedAt + delay > policy.totalMs) throw err;
      ctx.log.debug({ call: ctx.what, attempt: n + 1, delayMs: Math.round(delay), kind: err.kind, status: err.status, code: err.code }, 'retrying after a transient failure');
      try {
        await sleep(delay, undefined, ctx.signal ? { signal: ctx.signal } : undefined);
      } catch (abort) {
        throw errorFromNetwork(err.method, err.path, abort);
      }
    }
  }
}
