/**
 * What one user may hold waiting in the wake-up hub. Every acquirable job costs one question to the
 * database per distinct filter base that has a waiter (`wake-hub.ts`), on the server's main thread:
 * one user holding thousands of waiting requests, each with a filter of its own, would make every
 * job cost thousands of queries and slow dispatch for everyone. So the distinct bases of one user's
 * waiting requests are bounded in number (`serve.max_wait_filters_per_user`), and together they may
 * ask no more than one list filter may (`FILTER_LIMITS`: 500 expressions, 10,000 characters of
 * substring search; such a search costs its length times the job's text, a tenth of a second for
 * 10,000 characters in a 1 MB description). Whatever a user sends, its waiting costs each job a
 * bounded number of indexed questions that together evaluate at most one filter's worth. (The job
 * list route no longer holds filters that search text at all, `routes/jobs.ts`; the count of
 * searched characters stays as the hub's own bound for any other caller.)
 *
 * A request of a base the user already holds is always admitted, however many: agents sharing one
 * account send one poll filter, the same base whatever jobs each of them skips, so a cluster of any
 * size uses one base of its allowance. The count is per user, not per node: a user may register as
 * many nodes as it likes.
 */
import { FILTER_LIMITS } from '../../protocol/filter.js';

/** What asking whether one job is in a base's result costs, in the units of `FILTER_LIMITS`. */
export interface BaseCost {
  terms: number;
  searched: number;
}

interface Holding {
  /** Waiting requests per base key, with the base's cost. */
  bases: Map<string, { waiters: number; cost: BaseCost }>;
  terms: number;
  searched: number;
}

export class WaitAllowance {
  /** Distinct bases a user may hold waiting; 0: no bound at all. */
  readonly maxBases: number;
  readonly #byUser = new Map<number, Holding>();

  constructor(maxBases: number) {
    this.maxBases = maxBases;
  }

  /** Why `user` may not hold another waiting request on base `key` now, or null when it may. */
  refusal(user: number, key: string, cost: BaseCost): string | null {
    if (this.maxBases === 0) return null;
    const holding = this.#byUser.get(user);
    if (holding === undefined || holding.bases.has(key)) return null;
    const bases = holding.bases.size;
    if (bases >= this.maxBases) {
      return `this user's waiting list requests already use ${bases} distinct filters, the most allowed (serve.max_wait_filters_per_user)`;
    }
    if (holding.terms + cost.terms > FILTER_LIMITS.terms) {
      return `this user's waiting filters have ${holding.terms} expressions in all, and this one's ${cost.terms} would pass the ${FILTER_LIMITS.terms} allowed`;
    }
    if (holding.searched + cost.searched > FILTER_LIMITS.stringLength) {
      return `this user's waiting filters search for ${holding.searched} characters in all, and this one's ${cost.searched} would pass the ${FILTER_LIMITS.stringLength} allowed`;
    }
    return null;
  }

  /** `user` holds one more waiting request on base `key`. */
  join(user: number, key: string, cost: BaseCost): void {
    let holding = this.#byUser.get(user);
    if (holding === undefined) {
      holding = { bases: new Map(), terms: 0, searched: 0 };
      this.#byUser.set(user, holding);
    }
    const base = holding.bases.get(key);
    if (base !== undefined) {
      base.waiters++;
      return;
    }
    holding.bases.set(key, { waiters: 1, cost });
    holding.terms += cost.terms;
    holding.searched += cost.searched;
  }

  /** One of `user`'s waiting requests on base `key` ended. */
  leave(user: number, key: string): void {
    const holding = this.#byUser.get(user);
    const base = holding?.bases.get(key);
    if (holding === undefined || base === undefined) return;
    if (--base.waiters > 0) return;
    holding.bases.delete(key);
    holding.terms -= base.cost.terms;
    holding.searched -= base.cost.searched;
    if (holding.bases.size === 0) this.#byUser.delete(user);
  }

  clear(): void {
    this.#byUser.clear();
  }
}
