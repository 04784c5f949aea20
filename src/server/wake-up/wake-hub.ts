/**
 * Who to wake when a job becomes acquirable: list requests waiting on `X-UFDL-Wait` are queued per
 * filter in arrival order, and each acquirable job wakes **one** of them — the longest-waiting among
 * those whose filter has the job in its result — instead of every waiter (a thundering herd: with a
 * thousand idle nodes, a thousand list answers and a thousand acquire attempts per job).
 *
 * The waiter woken for a job holds an *offer* on it. If its node does not take the job (its agent
 * skips it: wrong executor, no GPU; or it crashed), the next waiter is woken when that node shows it
 * passed — its next list request, or an acquire of another job — or when a short grace runs out, so
 * a job is never stranded behind a node that will not run it. A node that passed a job is not offered
 * it again while that offer chain lasts.
 *
 * Costs, with W waiting requests and F distinct filters among them: waiting, waking and giving up are
 * O(1) in W (a linked list per filter, a timer per waiter); deciding whom to wake asks each of the F
 * filters at most once whether the job is in its result (one indexed lookup by pk). Agents all send
 * the same poll filter, so F is 1 in the common case.
 *
 * The hub knows nothing of HTTP or SQL: filters come as {@link WaitFilter}s, and the events that
 * drive it — {@link WakeHub.jobAcquirable}, {@link WakeHub.jobAcquired}, {@link WakeHub.nodeListed} —
 * are plain calls, so they can come from this process's transitions or from another replica sharing
 * the database (e.g. relayed by PostgreSQL LISTEN/NOTIFY). An offer whose acquire happened elsewhere
 * is found out when its grace ends: the job no longer matches, and nobody else is woken.
 */
import { WaiterQueue, type QueuedWaiter } from './waiter-queue.js';

/** A list filter as the hub sees it. */
export interface WaitFilter {
  /** Filters with equal keys have the same result set, and share one queue. */
  readonly key: string;
  /** Whether job `pk` is in this filter's result right now. */
  matches(jobPk: number): boolean;
}

/** How a wait ended: woken for a job, its time ran out, its client went away, or the hub closed. */
export type WaitOutcome = 'woken' | 'expired' | 'gone' | 'closed';

export interface WaitOptions {
  filter: WaitFilter;
  /** The node the request acts as (`Node-Id`), when it names one: lets the hub see it pass a job. */
  node: number | null;
  timeoutMs: number;
  /** Whether the client is still there to take an answer; a waiter that is not is never chosen. */
  connected(): boolean;
  /**
   * The arrival of an earlier wait of the same request: a waiter woken for a job that someone else
   * took waits again in the place it had, not at the back.
   */
  seq?: number;
}

export interface Wait {
  /** Settles once, with how the wait ended. */
  readonly outcome: Promise<WaitOutcome>;
  /** This waiter's arrival; pass it to the next wait of the same request. */
  readonly seq: number;
  /** The job it was woken for, once woken. */
  readonly wokenFor: number | null;
  /** The client went away: leave the queue now. Does nothing once the wait has ended. */
  cancel(): void;
}

export interface WakeHubOptions {
  /**
   * How long a woken node has to acquire the job it was woken for before the next waiter is woken.
   * @default 2000
   */
  offerGraceMs?: number;
  /** Called when a filter's `matches` throws (the job then counts as not matching). */
  onError?: (err: unknown) => void;
}

export interface WakeHubStats {
  /** List requests waiting now. */
  waiting: number;
  /** Distinct filters among them. */
  filters: number;
  /** Jobs whose woken node has not yet taken or passed them. */
  offers: number;
  /** Waiters woken since the hub started. */
  wakes: number;
  /** Of those, wakes for a job that an earlier woken node passed or did not take in time. */
  reoffers: number;
}

interface Waiter extends QueuedWaiter {
  wokenFor: number | null;
  readonly filterKey: string;
  readonly node: number | null;
  readonly connected: () => boolean;
  readonly timer: NodeJS.Timeout;
  readonly settle: (outcome: WaitOutcome) => void;
}

interface FilterQueue {
  filter: WaitFilter;
  queue: WaiterQueue<Waiter>;
}

interface Offer {
  job: number;
  /** The woken waiter's node, or null when its request named none (then only the grace ends it). */
  node: number | null;
  /** Nodes that were offered this job before and passed it. */
  passed: ReadonlySet<number>;
  timer: NodeJS.Timeout;
}

export const DEFAULT_OFFER_GRACE_MS = 2000;

export class WakeHub {
  /** How long a woken node has to take its job before the next waiter is woken. */
  readonly offerGraceMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #filters = new Map<string, FilterQueue>();
  readonly #offersByJob = new Map<number, Offer>();
  readonly #offersByNode = new Map<number, Offer>();
  #seq = 0;
  #waiting = 0;
  #wakes = 0;
  #reoffers = 0;
  #closed = false;

  constructor(options: WakeHubOptions = {}) {
    this.offerGraceMs = options.offerGraceMs ?? DEFAULT_OFFER_GRACE_MS;
    this.#onError = options.onError ?? (() => {});
  }

  /** Queue a waiter until it is woken for a job, its time runs out, it is cancelled or the hub closes. */
  wait(options: WaitOptions): Wait {
    const seq = options.seq ?? ++this.#seq;
    if (this.#closed) return { outcome: Promise.resolve('closed'), seq, wokenFor: null, cancel: () => {} };
    let settle!: (outcome: WaitOutcome) => void;
    const outcome = new Promise<WaitOutcome>((resolve) => {
      settle = resolve;
    });
    const waiter: Waiter = {
      seq,
      queue: null,
      prev: null,
      next: null,
      wokenFor: null,
      filterKey: options.filter.key,
      node: options.node,
      connected: options.connected,
      timer: setTimeout(() => this.#end(waiter, 'expired'), options.timeoutMs),
      settle,
    };
    let entry = this.#filters.get(options.filter.key);
    if (!entry) {
      entry = { filter: options.filter, queue: new WaiterQueue<Waiter>() };
      this.#filters.set(options.filter.key, entry);
    }
    if (options.seq === undefined) entry.queue.push(waiter);
    else entry.queue.putBack(waiter);
    this.#waiting++;
    return {
      outcome,
      seq,
      get wokenFor() {
        return waiter.wokenFor;
      },
      cancel: () => this.#end(waiter, 'gone'),
    };
  }

  /**
   * Job `pk` may have become acquirable (created, released, reset, aborted): wake the longest waiter
   * whose filter has it, if any. From this process's commits, or from another replica's.
   */
  jobAcquirable(pk: number): void {
    this.#dropOffer(this.#offersByJob.get(pk));
    this.#offer(pk, new Set());
  }

  /** Job `pk` was acquired by `node`: its offer is settled, and any other offer to `node` was passed. */
  jobAcquired(pk: number, node: number): void {
    this.#dropOffer(this.#offersByJob.get(pk));
    const other = this.#offersByNode.get(node);
    if (other) this.#reoffer(other);
  }

  /** `node` lists the queue again: a job it was woken for and has not taken, it passed. */
  nodeListed(node: number): void {
    const offer = this.#offersByNode.get(node);
    if (offer) this.#reoffer(offer);
  }

  /**
   * Whether job `pk` is being offered to a woken waiter of another node than `node` (of any node,
   * when `node` is null). A waiting list whose result holds only such jobs keeps waiting rather than
   * racing the woken node for them: a node whose wait just ran out would otherwise see every new job.
   */
  offeredToAnother(pk: number, node: number | null): boolean {
    const offer = this.#offersByJob.get(pk);
    return offer !== undefined && (node === null || offer.node !== node);
  }

  /** End every wait (`closed`) and forget every offer; later waits end at once. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const offer of [...this.#offersByJob.values()]) this.#dropOffer(offer);
    for (const { queue } of [...this.#filters.values()]) {
      for (const waiter of queue.drain()) this.#settle(waiter, 'closed');
    }
    this.#filters.clear();
    this.#waiting = 0;
  }

  stats(): WakeHubStats {
    return { waiting: this.#waiting, filters: this.#filters.size, offers: this.#offersByJob.size, wakes: this.#wakes, reoffers: this.#reoffers };
  }

  /** Wake the longest waiter (lowest seq) whose filter has job `pk` and whose node has not passed it. */
  #offer(pk: number, passed: ReadonlySet<number>): void {
    if (this.#closed) return;
    let chosen: Waiter | null = null;
    for (const entry of [...this.#filters.values()]) {
      const candidate = this.#firstEligible(entry, passed);
      // Only filters whose first waiter came earlier than the best so far need asking.
      if (candidate === null || (chosen !== null && candidate.seq > chosen.seq)) continue;
      if (this.#matches(entry.filter, pk)) chosen = candidate;
    }
    if (chosen === null) return;
    this.#unqueue(chosen);
    this.#wakes++;
    if (chosen.node !== null) {
      // One outstanding offer per node: a node woken again has passed what it was woken for before.
      const earlier = this.#offersByNode.get(chosen.node);
      if (earlier) this.#reoffer(earlier);
    }
    const offer: Offer = { job: pk, node: chosen.node, passed, timer: setTimeout(() => this.#reoffer(offer), this.offerGraceMs) };
    offer.timer.unref();
    this.#offersByJob.set(pk, offer);
    if (offer.node !== null) this.#offersByNode.set(offer.node, offer);
    chosen.wokenFor = pk;
    this.#settle(chosen, 'woken');
  }

  /** The woken node did not take the job: offer it to the next waiter, never again to the nodes that passed. */
  #reoffer(offer: Offer): void {
    this.#dropOffer(offer);
    const passed = offer.node === null ? offer.passed : new Set([...offer.passed, offer.node]);
    this.#reoffers++;
    const before = this.#wakes;
    this.#offer(offer.job, passed);
    if (this.#wakes === before) this.#reoffers--;
  }

  #dropOffer(offer: Offer | undefined): void {
    if (!offer) return;
    clearTimeout(offer.timer);
    if (this.#offersByJob.get(offer.job) === offer) this.#offersByJob.delete(offer.job);
    if (offer.node !== null && this.#offersByNode.get(offer.node) === offer) this.#offersByNode.delete(offer.node);
  }

  /**
   * The first waiter of `entry` that can be woken: waiters whose client has gone are dropped on the
   * way (their close event may not have been handled yet); nodes that passed the job are stepped over.
   */
  #firstEligible(entry: FilterQueue, passed: ReadonlySet<number>): Waiter | null {
    let waiter = entry.queue.head;
    while (waiter !== null) {
      const next = waiter.next;
      if (!waiter.connected()) this.#end(waiter, 'gone');
      else if (waiter.node === null || !passed.has(waiter.node)) return waiter;
      waiter = next;
    }
    return null;
  }

  #matches(filter: WaitFilter, pk: number): boolean {
    try {
      return filter.matches(pk);
    } catch (err) {
      this.#onError(err);
      return false;
    }
  }

  /** End a waiter that is still queued; a waiter already woken or ended is left alone. */
  #end(waiter: Waiter, outcome: WaitOutcome): void {
    if (waiter.queue === null) return;
    this.#unqueue(waiter);
    this.#settle(waiter, outcome);
  }

  #unqueue(waiter: Waiter): void {
    const queue = waiter.queue;
    if (queue === null) return;
    queue.remove(waiter);
    this.#waiting--;
    if (queue.size === 0) this.#filters.delete(waiter.filterKey);
  }

  #settle(waiter: Waiter, outcome: WaitOutcome): void {
    clearTimeout(waiter.timer);
    waiter.settle(outcome);
  }
}
