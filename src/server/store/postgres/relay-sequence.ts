/**
 * What a replica makes of the numbers on the other replicas' notifications (`hub-relay.ts`). Each
 * replica numbers its own notifications 1, 2, 3… under an origin id drawn afresh at every start, so
 * a restarted replica is a new origin, never one whose numbers went back. A number is consumed by
 * each notification the sender meant to send, whether or not it got through, and a retry sends the
 * same number again. So, per origin:
 *
 * - `next`: one more than the last heard — nothing was missed;
 * - `repeat`: not above the last heard — a retry whose first try did arrive after all (a time-out
 *   that committed): drop it, the event was applied once already;
 * - `gap`: more than one above — a notification of that origin never arrived: catch up;
 * - `first`: the origin was never heard (a replica that just started, or this one just started),
 *   or not since this replica's own listening connection was replaced (`rebase`): there is nothing
 *   to compare with, and nothing to catch up on that the listener's own catch-up does not cover.
 *
 * The sender says so itself when it gave up on a notification (`relay-publisher.ts`), so a receiver
 * for which the origin is `first` at that moment still catches up; the gap is the receivers' own
 * check of the same thing.
 */

export type Heard = 'first' | 'next' | 'gap' | 'repeat';

/** How many origins are remembered: replicas come and go (each start is a new origin); the oldest heard is forgotten first. */
const DEFAULT_CAPACITY = 1024;

interface Last {
  sequence: number;
  /** False after this replica's listener was replaced: the next number starts afresh. */
  continuous: boolean;
}

export class OriginSequences {
  readonly #last = new Map<string, Last>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** Record that `origin`'s notification number `sequence` arrived, and say how it follows the last one heard. */
  heard(origin: string, sequence: number): Heard {
    const last = this.#last.get(origin);
    if (last !== undefined && sequence <= last.sequence) return 'repeat';
    // Moved to the end: the map's order is the order origins were last heard in.
    this.#last.delete(origin);
    this.#last.set(origin, { sequence, continuous: true });
    if (this.#last.size > this.capacity) this.#last.delete(this.#last.keys().next().value!);
    if (last === undefined || !last.continuous) return 'first';
    return sequence === last.sequence + 1 ? 'next' : 'gap';
  }

  /**
   * This replica stopped listening for a while (and catches up by itself): the numbers sent
   * meanwhile are missing for a reason already dealt with, so the next one from each origin is not
   * a gap. Repeats of what was heard before are still dropped.
   */
  rebase(): void {
    for (const last of this.#last.values()) last.continuous = false;
  }
}
