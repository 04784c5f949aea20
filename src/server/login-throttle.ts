/**
 * Login throttling. Without it, anyone could try passwords as fast as the server hashes them. Failed
 * logins are counted per user name and per client address (IPv6: per /64); after `allowed` failures
 * of either, each further attempt must wait — 1 s, then twice as long after every further failure,
 * at most `maxDelayMs` — and an attempt that comes too early is refused with 429 without looking at
 * the password (a right password too: otherwise the throttle would only slow the guessing). A
 * success resets the user's and the address's count; a count that has rested for `forgetAfterMs`
 * starts over.
 *
 * An address gets more failures than a user name (many people may share a NAT address, one person
 * rarely mistypes ten times), so that a guesser from one address is stopped before it has tried many
 * names, and one name's lock-out does not lock everyone behind the same address.
 */
import { UfdlError } from '../protocol/errors.js';
import { addressKey } from './connection-limits.js';

export interface LoginThrottleOptions {
  /** Failures of one user name allowed before attempts must wait; 0 turns throttling off. */
  allowed: number;
  /** @default 300_000 (5 minutes) */
  maxDelayMs?: number;
  /** @default 900_000 (15 minutes) */
  forgetAfterMs?: number;
  now?: () => number;
}

interface Count {
  failures: number;
  /** No attempt before this time (ms since the epoch). */
  until: number;
  last: number;
}

/** How many entries are kept at most; the oldest are dropped first. */
const MAX_ENTRIES = 10_000;

export class LoginThrottle {
  readonly #allowed: number;
  readonly #maxDelayMs: number;
  readonly #forgetAfterMs: number;
  readonly #now: () => number;
  readonly #counts = new Map<string, Count>();

  constructor(options: LoginThrottleOptions) {
    this.#allowed = options.allowed;
    this.#maxDelayMs = options.maxDelayMs ?? 300_000;
    this.#forgetAfterMs = options.forgetAfterMs ?? 900_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Before checking a password: refuse (429) when the user or the address must still wait, else
   * count the attempt as a failure until {@link succeeded} says otherwise. Counted before the
   * password is checked (a hash takes tens of milliseconds): counted after, logins sent all at once
   * on many connections would each pass before the first failure was counted.
   */
  attempt(username: string, address: string | undefined): void {
    if (this.#allowed <= 0) return;
    const now = this.#now();
    for (const [key, what] of this.#keys(username, address)) {
      const count = this.#current(key, now);
      if (count && count.until > now) {
        const seconds = Math.ceil((count.until - now) / 1000);
        throw new UfdlError('UFDL_ERR_AUTH_THROTTLED', `Too many failed logins ${what}; try again in ${seconds} s`, {
          extra: { retry_after: seconds },
        });
      }
    }
    this.#fail(username, address, now);
  }

  #fail(username: string, address: string | undefined, now: number): void {
    for (const [key, , allowed] of this.#keys(username, address)) {
      const count = this.#current(key, now) ?? { failures: 0, until: 0, last: now };
      count.failures++;
      count.last = now;
      const over = count.failures - allowed;
      if (over > 0) count.until = now + Math.min(this.#maxDelayMs, 1000 * 2 ** Math.min(over - 1, 30));
      this.#counts.delete(key); // re-inserted last: the Map stays ordered by last use
      this.#counts.set(key, count);
    }
    while (this.#counts.size > MAX_ENTRIES) this.#counts.delete(this.#counts.keys().next().value!);
  }

  /** The password was right: the user's and the address's counts start over. */
  succeeded(username: string, address: string | undefined): void {
    for (const [key] of this.#keys(username, address)) this.#counts.delete(key);
  }

  #keys(username: string, address: string | undefined): [string, string, number][] {
    return [
      [`user\u0000${username}`, `for user '${username}'`, this.#allowed],
      [`address\u0000${addressKey(address)}`, `from ${addressKey(address)}`, this.#allowed * 4],
    ];
  }

  #current(key: string, now: number): Count | undefined {
    const count = this.#counts.get(key);
    if (count && now - count.last > this.#forgetAfterMs && count.until <= now) {
      this.#counts.delete(key);
      return undefined;
    }
    return count;
  }
}
