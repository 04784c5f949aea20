/**
 * One filter's waiting list requests in arrival order: a doubly linked list, so joining at the tail,
 * leaving from anywhere (the client went away, the wait ran out) and taking the head are each O(1)
 * whatever the number of waiters. Arrival is a sequence number shared by every queue of a hub, so
 * the heads of several queues can be compared to find the longest waiter of all.
 */

export interface QueuedWaiter {
  /** Arrival order across the whole hub; a waiter put back keeps the one it came with. */
  readonly seq: number;
  /** Set while the waiter is in a queue. */
  queue: WaiterQueue<this> | null;
  prev: this | null;
  next: this | null;
}

export class WaiterQueue<W extends QueuedWaiter> {
  #head: W | null = null;
  #tail: W | null = null;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get head(): W | null {
    return this.#head;
  }

  /** Join at the tail: `waiter.seq` must be greater than every seq already queued. */
  push(waiter: W): void {
    waiter.queue = this;
    waiter.prev = this.#tail;
    waiter.next = null;
    if (this.#tail) this.#tail.next = waiter;
    else this.#head = waiter;
    this.#tail = waiter;
    this.#size++;
  }

  /**
   * Put back a waiter that was taken from a queue and keeps its arrival: in seq order, searched from
   * the head, where it came from (so O(1) unless several were taken and come back out of order), or
   * at the tail when it came last (a whole queue taken and coming back in order: a recheck).
   */
  putBack(waiter: W): void {
    if (this.#tail === null || this.#tail.seq < waiter.seq) {
      this.push(waiter);
      return;
    }
    let after: W | null = null;
    let cursor = this.#head;
    while (cursor !== null && cursor.seq < waiter.seq) {
      after = cursor;
      cursor = cursor.next;
    }
    waiter.queue = this;
    waiter.prev = after;
    waiter.next = cursor;
    if (after) after.next = waiter;
    else this.#head = waiter;
    if (cursor) cursor.prev = waiter;
    else this.#tail = waiter;
    this.#size++;
  }

  /** Leave the queue, wherever the waiter is in it; a waiter not in this queue is left alone. */
  remove(waiter: W): void {
    if (waiter.queue !== this) return;
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.#head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.#tail = waiter.prev;
    waiter.prev = null;
    waiter.next = null;
    waiter.queue = null;
    this.#size--;
  }

  /** Empty the queue, returning what it held in order (server shutdown). */
  drain(): W[] {
    const all: W[] = [];
    for (let w = this.#head; w !== null; w = this.#head) {
      this.remove(w);
      all.push(w);
    }
    return all;
  }
}
