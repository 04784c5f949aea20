/**
 * Before listening on a host name (`serve.host`, `agent.status_host`): wait, in this process, while
 * the resolver cannot answer just now (getaddrinfo's EAI_AGAIN — at boot, before the network or DNS
 * is up). Exiting with the temporary-failure status for systemd to start us again did not do:
 * systemd restarts 10 s apart and gives up after 5 starts in 10 minutes, so a resolver that stayed
 * down for more than about a minute left the node down for good. Shared by the server (`serve.ts`)
 * and the agent's status endpoint, which import nothing of each other.
 *
 * Only EAI_AGAIN is waited out; any other answer (a name that does not exist, ENOTFOUND) is left to
 * the listen, which fails with it as before. An address needs no lookup and is never waited for.
 */
import dns from 'node:dns';
import { isIP } from 'node:net';

/**
 * How long a resolver that cannot answer is waited for before giving up (the caller then exits with
 * the temporary-failure status, 75). As long as systemd's own start limit window (5 starts in 10
 * minutes): a resolver down longer than that is an outage for someone to look at, not boot order.
 */
export const HOST_LOOKUP_WAIT_MS = 10 * 60_000;

/** Between two lookups: 1 s, doubling, at most 30 s, each ±20 % so that many services do not ask together. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const JITTER = 0.2;

/** The first failed lookup is logged, then every fifth (about every 2.5 min once the waits are 30 s). */
const LOG_EVERY = 5;

export interface HostLookupWait {
  /** What listens, for the log line: "the server", "the status endpoint". */
  listener: string;
  log: { warn(fields: object, msg: string): void };
  /** Aborted when the process is asked to stop: the wait ends at once, throwing the signal's reason. */
  signal?: AbortSignal;
  /** @default {@link HOST_LOOKUP_WAIT_MS} */
  limitMs?: number;
  /** The resolver. @default `dns.lookup`, which `listen()` itself uses */
  lookup?: (host: string) => Promise<unknown>;
  /**
   * Told of every failed lookup, before the wait for the next one (the log says only every fifth):
   * for what the process shows meanwhile, e.g. systemd's status line ({@link describeHostLookupRetry}).
   */
  onRetry?: (retry: HostLookupRetry) => void;
}

/** One lookup the resolver could not answer, and what comes next. */
export interface HostLookupRetry {
  host: string;
  /** Lookups that failed so far, this one included. */
  failures: number;
  /** The wait until the next lookup. */
  retryInMs: number;
  /** The time left until the wait gives up. */
  givesUpInMs: number;
}

/** A failed lookup as a line for an operator: "waiting for the resolver to answer for ufdl.example (3 tries failed; next try in 4 s, gives up in 9 min)". */
export function describeHostLookupRetry(retry: HostLookupRetry): string {
  const tries = retry.failures === 1 ? '1 try failed' : `${retry.failures} tries failed`;
  return `waiting for the resolver to answer for ${retry.host} (${tries}; next try in ${Math.round(retry.retryInMs / 1000)} s, gives up in ${Math.ceil(retry.givesUpInMs / 60_000)} min)`;
}

/**
 * Resolves once `host` is an address, can be looked up, or fails to look up for good (ENOTFOUND and
 * the like: the listen then reports it). Throws the lookup's EAI_AGAIN error when the resolver still
 * cannot answer after `limitMs`, and `signal.reason` as soon as `signal` aborts.
 */
export async function waitForHostLookup(host: string, wait: HostLookupWait): Promise<void> {
  if (isIP(host) !== 0) return;
  const lookup = wait.lookup ?? defaultLookup;
  const limitMs = wait.limitMs ?? HOST_LOOKUP_WAIT_MS;
  const started = performance.now();
  for (let failures = 0; ; failures++) {
    wait.signal?.throwIfAborted();
    try {
      await lookup(host);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAI_AGAIN') return;
      const leftMs = limitMs - (performance.now() - started);
      if (leftMs <= 0) throw err;
      const delayMs = Math.min(leftMs, retryDelayMs(failures));
      wait.onRetry?.({ host, failures: failures + 1, retryInMs: delayMs, givesUpInMs: Math.round(leftMs) });
      if (failures % LOG_EVERY === 0) {
        wait.log.warn(
          { host, code: 'EAI_AGAIN', err: (err as Error).message, failures: failures + 1, retryInMs: delayMs, givesUpInMs: Math.round(leftMs) },
          `${wait.listener} cannot look up ${host} just now (${(err as Error).message}); trying again in ${Math.round(delayMs / 1000)} s, for up to ${Math.round(limitMs / 60_000)} min before exiting`,
        );
      }
      await sleep(delayMs, wait.signal);
    }
  }
}

function defaultLookup(host: string): Promise<unknown> {
  // `dns.lookup` as `listen()` calls it, read at each call (the tests' resolver stand-in replaces it;
  // `dns.promises.lookup` is another function).
  return new Promise((resolve, reject) => dns.lookup(host, (err, address) => (err ? reject(err) : resolve(address))));
}

function retryDelayMs(failures: number): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures);
  return Math.round(base * (1 + JITTER * (2 * Math.random() - 1)));
}

/** Sleep `ms`; rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
