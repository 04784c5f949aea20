/**
 * The addresses of one server (docs/ARCHITECTURE.md, "Failover"): replicas sharing one database, or
 * one load-balancer address. Every request goes to the {@link Endpoints.current} address; the client
 * sticks to it while it answers and moves to the next one in the configured order when it fails as a
 * whole server fails — no connection, a timeout, a 5xx (a 503 `UFDL_ERR_SERVER_NOT_DURABLE` among
 * them) — never on a 4xx, which is the server's answer to the request. While another address is in
 * use, the first one is probed again every `failbackAfterMs` (driven by traffic, so no timer outlives
 * the client) and taken back as soon as it answers (`http.ts` says how it is probed).
 *
 * Each switch is logged once, with the address left, the address taken and why. With a single
 * address nothing here changes a thing: the client behaves as before.
 */
import type { ClientLogger } from './options.js';

/** Why an address was left: how its last request failed. */
export interface EndpointFailure {
  kind: 'network' | 'timeout' | 'server';
  status?: number | undefined;
  code?: string | undefined;
  detail: string;
}

export interface EndpointStatus {
  url: string;
  current: boolean;
  /** Times requests to this address failed as a server fails (see {@link EndpointFailure}). */
  failures: number;
  lastFailureAt: string | null;
  lastFailure: string | null;
  lastOkAt: string | null;
}

export interface EndpointsStatus {
  current: string;
  /** Times the client moved to another address, failing over or back. */
  switches: number;
  addresses: EndpointStatus[];
}

/** Answers `true` when the server at `url` answers at all (any status below 500). */
export type EndpointProbe = (url: string) => Promise<boolean>;

interface Entry {
  readonly url: string;
  failures: number;
  lastFailureAt: number | null;
  lastFailure: EndpointFailure | null;
  lastOkAt: number | null;
}

export interface EndpointsOptions {
  failbackAfterMs: number;
  logger: ClientLogger;
  now?: () => number;
}

export class Endpoints {
  readonly #entries: Entry[];
  readonly #options: EndpointsOptions;
  readonly #now: () => number;
  readonly #listeners = new Set<(from: string, to: string) => void>();
  #index = 0;
  #switches = 0;
  /** Set while every address has failed since any answered: further switches are logged at debug. */
  #allDown = false;
  #probing = false;
  #lastProbeAt = 0;
  #probe: EndpointProbe | undefined;

  /** `urls`: base URLs in order of preference, already validated and ending with `/`. */
  constructor(urls: readonly string[], options: EndpointsOptions) {
    if (urls.length === 0) throw new TypeError('Endpoints need at least one address');
    this.#entries = urls.map((url) => ({ url, failures: 0, lastFailureAt: null, lastFailure: null, lastOkAt: null }));
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Every address, in order of preference. */
  get urls(): readonly string[] {
    return this.#entries.map((e) => e.url);
  }

  /** The address requests go to now. Reading it may start a probe of the first address (fail-back). */
  get current(): string {
    this.#maybeProbe();
    return this.#entries[this.#index]!.url;
  }

  /** How to probe an address for fail-back; without one, the client never goes back by itself. */
  setProbe(probe: EndpointProbe): void {
    this.#probe = probe;
  }

  /** Be told of each switch (`from`, `to`). Returns the unsubscriber. */
  onSwitch(listener: (from: string, to: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A request to `url` got an answer that is not a server failure. */
  succeeded(url: string): void {
    const entry = this.#entries.find((e) => e.url === url);
    if (!entry) return;
    entry.lastOkAt = this.#now();
    if (this.#allDown && entry === this.#entries[this.#index]) {
      this.#allDown = false;
      if (this.#entries.length > 1) this.#options.logger.info({ server: url }, 'the server answers again');
    }
  }

  /**
   * A request to `url` failed as a server fails. When `url` is the address in use and there is
   * another, move to the next one (in order, round the list); returns whether the client switched.
   * A failure of an address already left changes nothing: concurrent requests that failed together
   * move the client once.
   */
  failed(url: string, failure: EndpointFailure): boolean {
    const entry = this.#entries.find((e) => e.url === url);
    if (!entry) return false;
    entry.failures++;
    entry.lastFailureAt = this.#now();
    entry.lastFailure = failure;
    if (this.#entries.length === 1 || entry !== this.#entries[this.#index]) return false;
    const next = (this.#index + 1) % this.#entries.length;
    this.#allDown = this.#entries.every((e) => e.lastFailureAt !== null && (e.lastOkAt === null || e.lastOkAt < e.lastFailureAt));
    this.#switchTo(next, describe(failure));
    return true;
  }

  getStatus(): EndpointsStatus {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      current: this.#entries[this.#index]!.url,
      switches: this.#switches,
      addresses: this.#entries.map((e, i) => ({
        url: e.url,
        current: i === this.#index,
        failures: e.failures,
        lastFailureAt: iso(e.lastFailureAt),
        lastFailure: e.lastFailure && describe(e.lastFailure),
        lastOkAt: iso(e.lastOkAt),
      })),
    };
  }

  #switchTo(index: number, reason: string): void {
    const from = this.#entries[this.#index]!.url;
    const to = this.#entries[index]!.url;
    this.#index = index;
    this.#switches++;
    const fields = { from, to, reason };
    if (this.#allDown) this.#options.logger.debug(fields, 'no server address answers; trying the next');
    else this.#options.logger.warn(fields, 'server address failed; switching to the next');
    for (const listener of this.#listeners) listener(from, to);
  }

  /**
   * While away from the first address, ask it again once `failbackAfterMs` has passed since it last
   * failed (or was last probed); take it back when it answers. One probe at a time.
   */
  #maybeProbe(): void {
    if (this.#index === 0 || this.#probing || !this.#probe) return;
    const first = this.#entries[0]!;
    const since = Math.max(first.lastFailureAt ?? 0, this.#lastProbeAt);
    const now = this.#now();
    if (now - since < this.#options.failbackAfterMs) return;
    this.#probing = true;
    this.#lastProbeAt = now;
    this.#probe(first.url)
      .then((answered) => {
        if (!answered || this.#index === 0) return;
        first.lastOkAt = this.#now();
        this.#allDown = false;
        const from = this.#entries[this.#index]!.url;
        this.#index = 0;
        this.#switches++;
        this.#options.logger.info({ from, to: first.url }, 'the first server address answers again; switching back to it');
        for (const listener of this.#listeners) listener(from, first.url);
      })
      .catch(() => {})
      .finally(() => {
        this.#probing = false;
      });
  }
}

function describe(failure: EndpointFailure): string {
  if (failure.status !== undefined) return `${failure.status}: ${failure.detail}`;
  return failure.code ? `${failure.kind} (${failure.code}): ${failure.detail}` : `${failure.kind}: ${failure.detail}`;
}
