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
 * O(1) in W (a linked list per filter, a timer per waiter). Filters are grouped by their *base*, the
 * filter less the pks it excludes (`store/pk-exclusions.ts`): deciding whom to wake checks each
 * filter's exclusions in memory and asks each of the B distinct bases at most once whether the job
 * is in its result (one indexed lookup by pk) — nodes that each skip other jobs share one question.
 * Agents all send the same poll filter, so B is 1 in the common case. Whatever a user sends, its share
 * of B is bounded by a {@link WaitAllowance}, and a request beyond it is not queued (`declined`; its
 * list is answered at once, as the reference answers every list).
 *
 * The hub knows nothing of HTTP or SQL: filters come as {@link WaitFilter}s, and the events that
 * drive it — {@link WakeHub.jobAcquirable}, {@link WakeHub.jobAcquired}, {@link WakeHub.nodeListed} —
 * are plain calls, so they can come from this process's transitions or from another replica sharing
 * the database (e.g. relayed by PostgreSQL LISTEN/NOTIFY). An offer whose acquire happened elsewhere
 * is found out when its grace ends: the job no longer matches, and nobody else is woken.
 *
 * Events can be missed (a replica whose connection to the others was replaced): {@link WakeHub.recheck}
 * then has every waiter run its query again. A waiter that finds a job takes the offer on it
 * ({@link WakeHub.claim}), so the waiters that look after it leave that job to its node, as they do
 * after a wake-up, instead of all answering with it.
 */
import { WaitAllowance, type BaseCost } from './wait-allowance.js';
import { WaiterQueue, type QueuedWaiter } from './waiter-queue.js';

/** The part of a list filter the database is asked about. */
export interface WaitFilterBase {
  /** Bases with equal keys have the same result set: one question per job answers them all. */
  readonly key: string;
  /** Whether job `pk` is in this base's result right now. */
  matches(jobPk: number): boolean;
  /** What asking costs, counted against its user's {@link WaitAllowance}; absent: the base counts only as one base. */
  readonly cost?: BaseCost;
}

/** A list filter as the hub sees it. */
export interface WaitFilter {
  /** Filters with equal keys have the same result set, and share one queue. */
  readonly key: string;
  /** Whether job `pk` is in this filter's result right now. */
  matches(jobPk: number): boolean;
  /**
   * The filter's result is its base's less {@link excluded}: the hub asks the base, once a job for
   * every filter that shares it. Absent: the filter is its own base.
   */
  readonly base?: WaitFilterBase;
  /** Pks this filter's result never has although its base's may; checked in memory. */
  readonly excluded?: ReadonlySet<number>;
}

/**
 * How a wait ended: woken for a job, its time ran out, its client went away, the hub closed, it
 * never started because its user's allowance of distinct waiting filters is used up, or it is to run
 * its query again because the events that would have woken it may have been missed (`recheck`).
 */
export type WaitOutcome = 'woken' | 'expired' | 'gone' | 'closed' | 'declined' | 'recheck';

export interface WaitOptions {
  filter: WaitFilter;
  /** The node the request acts as (`Node-Id`), when it names one: lets the hub see it pass a job. */
  node: number | null;
  /** The user the request is made by, whose allowance it counts against; absent: no allowance applies. */
  user?: number;
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
  /** Why the wait was `declined`: a sentence naming the bound. */
  readonly declined: string | null;
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
  /**
   * Distinct filter bases one user's waiting requests may use ({@link WaitAllowance}); 0: no bound.
   * @default 16
   */
  maxBasesPerUser?: number;
}

export interface WakeHubStats {
  /** List requests waiting now. */
  waiting: number;
  /** Distinct filters among them. */
  filters: number;
  /** Distinct bases among those filters: what the database is asked about per acquirable job. */
  bases: number;
  /** Questions asked of the database since the hub started: whether a job is in a base's result. */
  baseChecks: number;
  /** Waits not queued since the hub started, because their user's allowance was used up (or their filter searches text). */
  declined: number;
  /** Jobs whose woken node has not yet taken or passed them. */
  offers: number;
  /** Waiters woken since the hub started. */
  wakes: number;
  /** Of those, wakes for a job that an earlier woken node passed or did not take in time. */
  reoffers: number;
  /** Waiters told to run their query again since the hub started, because events may have been missed. */
  rechecks: number;
}

interface Waiter extends QueuedWaiter {
  wokenFor: number | null;
  readonly entry: FilterQueue;
  readonly node: number | null;
  readonly user: number | undefined;
  readonly connected: () => boolean;
  readonly timer: NodeJS.Timeout;
  readonly settle: (outcome: WaitOutcome) => void;
}

/** The waiters of one filter, in arrival order. */
interface FilterQueue {
  readonly key: string;
  readonly excluded: ReadonlySet<number>;
  readonly queue: WaiterQueue<Waiter>;
  readonly group: BaseGroup;
}

/** The filters that share one base, asked about once per job. */
interface BaseGroup {
  readonly base: WaitFilterBase;
  readonly filters: Map<string, FilterQueue>;
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
export const DEFAULT_MAX_BASES_PER_USER = 16;
const NO_EXCLUSIONS: ReadonlySet<number> = new Set();

export class WakeHub {
  /** How long a woken node has to take its job before the next waiter is woken. */
  readonly offerGraceMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #bases = new Map<string, BaseGroup>();
  readonly #allowance: WaitAllowance;
  #filterCount = 0;
  #baseChecks = 0;
  #declined = 0;
  readonly #offersByJob = new Map<number, Offer>();
  readonly #offersByNode = new Map<number, Offer>();
  #seq = 0;
  #waiting = 0;
  #wakes = 0;
  #reoffers = 0;
  #rechecks = 0;
  #closed = false;

  constructor(options: WakeHubOptions = {}) {
    this.offerGraceMs = options.offerGraceMs ?? DEFAULT_OFFER_GRACE_MS;
    this.#onError = options.onError ?? (() => {});
    this.#allowance = new WaitAllowance(options.maxBasesPerUser ?? DEFAULT_MAX_BASES_PER_USER);
  }

  /** Queue a waiter until it is woken for a job, its time runs out, it is cancelled or the hub closes. */
  wait(options: WaitOptions): Wait {
    const seq = options.seq ?? ++this.#seq;
    if (this.#closed) return ended('closed', seq);
    const { filter, user } = options;
    const base = filter.base ?? { key: filter.key, matches: (pk: number) => filter.matches(pk) };
    const cost = base.cost ?? { terms: 0, searched: 0 };
    if (user !== undefined) {
      const refusal = this.#allowance.refusal(user, base.key, cost);
      if (refusal !== null) {
        this.#declined++;
        return ended('declined', seq, refusal);
      }
      this.#allowance.join(user, base.key, cost);
    }
    let group = this.#bases.get(base.key);
    if (!group) {
      group = { base, filters: new Map() };
      this.#bases.set(base.key, group);
    }
    let entry = group.filters.get(filter.key);
    if (!entry) {
      entry = { key: filter.key, excluded: filter.excluded ?? NO_EXCLUSIONS, queue: new WaiterQueue<Waiter>(), group };
      group.filters.set(filter.key, entry);
      this.#filterCount++;
    }
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
      entry,
      node: options.node,
      user,
      connected: options.connected,
      timer: setTimeout(() => this.#end(waiter, 'expired'), options.timeoutMs),
      settle,
    };
    if (options.seq === undefined) entry.queue.push(waiter);
    else entry.queue.putBack(waiter);
    this.#waiting++;
    return {
      outcome,
      seq,
      get wokenFor() {
        return waiter.wokenFor;
      },
      declined: null,
      cancel: () => this.#end(waiter, 'gone'),
    };
  }

  /**
   * A wait that the caller declined itself, before asking the hub (its filter searches text): counted
   * with the hub's own in {@link WakeHubStats.declined}.
   */
  countDeclined(): void {
    this.#declined++;
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
   * Events that drive the hub may have been missed (this replica did not hear the others for a
   * while): every waiter ends with `recheck`, longest waiting first, to run its query again and wait
   * again in its place if it finds nothing. One query per waiter, once per gap.
   */
  recheck(): void {
    if (this.#closed) return;
    const all: Waiter[] = [];
    for (const group of this.#bases.values()) {
      for (const { queue } of group.filters.values()) {
        for (let waiter = queue.head; waiter !== null; waiter = waiter.next) all.push(waiter);
      }
    }
    // Settled in arrival order, their requests look in that order: the longest waiter finds a job first.
    all.sort((a, b) => a.seq - b.seq);
    for (const waiter of all) {
      if (!waiter.connected()) {
        this.#end(waiter, 'gone');
        continue;
      }
      this.#rechecks++;
      this.#end(waiter, 'recheck');
    }
  }

  /**
   * A waiter that ran its query again (after a `recheck`) found job `pk`, which nobody is being
   * offered: its node holds the offer, as if woken for it, so that the waiters rechecking after it
   * leave the job to that node, and the next waiter is woken should the node not take it.
   */
  claim(pk: number, node: number | null): void {
    if (this.#closed || this.#offersByJob.has(pk)) return;
    this.#hold(pk, node, new Set());
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
    for (const group of [...this.#bases.values()]) {
      for (const { queue } of [...group.filters.values()]) {
        for (const waiter of queue.drain()) this.#settle(waiter, 'closed');
      }
    }
    this.#bases.clear();
    this.#allowance.clear();
    this.#filterCount = 0;
    this.#waiting = 0;
  }

  stats(): WakeHubStats {
    return {
      waiting: this.#waiting,
      filters: this.#filterCount,
      bases: this.#bases.size,
      baseChecks: this.#baseChecks,
      declined: this.#declined,
      offers: this.#offersByJob.size,
      wakes: this.#wakes,
      reoffers: this.#reoffers,
      rechecks: this.#rechecks,
    };
  }

  /** Wake the longest waiter (lowest seq) whose filter has job `pk` and whose node has not passed it. */
  #offer(pk: number, passed: ReadonlySet<number>): void {
    if (this.#closed) return;
    let chosen: Waiter | null = null;
    // Maps tolerate deleting entries while they are iterated: waiters found gone on the way are
    // dropped, and with them a filter or base left empty; nothing is added meanwhile.
    for (const group of this.#bases.values()) {
      // The base's longest waiter that may have the job, as far as memory can tell.
      let best: Waiter | null = null;
      for (const entry of group.filters.values()) {
        if (entry.excluded.has(pk)) continue;
        const candidate = this.#firstEligible(entry, passed);
        if (candidate !== null && (best === null || candidate.seq < best.seq)) best = candidate;
      }
      // Only bases whose best waiter came earlier than the best so far need asking.
      if (best === null || (chosen !== null && best.seq > chosen.seq)) continue;
      if (this.#matches(group.base, pk)) chosen = best;
    }
    if (chosen === null) return;
    this.#unqueue(chosen);
    this.#wakes++;
    this.#hold(pk, chosen.node, passed);
    chosen.wokenFor = pk;
    this.#settle(chosen, 'woken');
  }

  /** Offer job `pk` to `node` until it takes it, passes it, or the grace runs out. */
  #hold(pk: number, node: number | null, passed: ReadonlySet<number>): void {
    if (node !== null) {
      // One outstanding offer per node: a node woken again has passed what it was woken for before.
      const earlier = this.#offersByNode.get(node);
      if (earlier) this.#reoffer(earlier);
    }
    const offer: Offer = { job: pk, node, passed, timer: setTimeout(() => this.#reoffer(offer), this.offerGraceMs) };
    offer.timer.unref();
    this.#offersByJob.set(pk, offer);
    if (offer.node !== null) this.#offersByNode.set(offer.node, offer);
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

  #matches(base: WaitFilterBase, pk: number): boolean {
    this.#baseChecks++;
    try {
      return base.matches(pk);
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
    const { entry } = waiter;
    const { group } = entry;
    if (waiter.user !== undefined) this.#allowance.leave(waiter.user, group.base.key);
    if (queue.size > 0) return;
    group.filters.delete(entry.key);
    this.#filterCount--;
    if (group.filters.size === 0) this.#bases.delete(group.base.key);
  }

  #settle(waiter: Waiter, outcome: WaitOutcome): void {
    clearTimeout(waiter.timer);
    waiter.settle(outcome);
  }
}

/** A wait that ended before it began. */
function ended(outcome: 'closed' | 'declined', seq: number, declined: string | null = null): Wait {
  return { outcome: Promise.resolve(outcome), seq, wokenFor: null, declined, cancel: () => {} };
}
