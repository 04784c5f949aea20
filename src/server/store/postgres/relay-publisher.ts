/**
 * The sending side of the hub relay (`hub-relay.ts`): this replica's notifications go out one at a
 * time, in the order given, each numbered (`relay-sequence.ts`), and none is lost without the other
 * replicas being told to catch up.
 *
 * A notification whose send fails (the connection broke just then, the statement timed out) is
 * sent again, a bounded number of times, with the same number: if an earlier try did arrive after
 * all, receivers drop the repeat. If every try fails, the notification is given up and the
 * publisher sends a *marker* instead, a tiny notification that says "this replica lost events:
 * read the database again" — each receiver then emits `resync` on its hub, exactly as after its own
 * listening connection was replaced. The marker is tried until it goes through (waits doubling to
 * a few seconds), so a replica that fails once and then has nothing more to say still gets its
 * loss across; and what this replica emits while the marker waits is dropped rather than queued,
 * since the catch-up the marker starts reads it from the database anyway (each event is emitted
 * after its commit, each attempt of the marker starts after the events it drops were emitted, and
 * receivers read the database after the marker that went through arrived). That keeps the queue
 * bounded through an outage of any length.
 *
 * Why not a periodic heartbeat carrying the last number: it would cost every replica a notification
 * to every other one every few seconds, forever, to find losses that the sender knows about the
 * moment they happen; and it would still leave a window the marker does not.
 */
import type { Logger } from 'pino';

export interface RelayPublisherOptions {
  /** Send one payload; rejects when it may not have gone out. */
  send(payload: string): Promise<unknown>;
  /** The payload of the marker numbered `sequence`. */
  marker(sequence: number): string;
  log: Pick<Logger, 'warn' | 'error' | 'info'>;
  /**
   * The waits before the second, third… try of one notification, which has that many tries more than one.
   * @default [100, 1000]
   */
  retryDelaysMs?: readonly number[];
  /**
   * The marker's first wait between tries, and its longest (the waits double).
   * @default [100, 5000]
   */
  markerDelaysMs?: readonly [first: number, longest: number];
}

interface Pending {
  encode: (sequence: number) => string;
  /** Log fields naming what is lost if it is given up. */
  about: Record<string, unknown>;
}

export class RelayPublisher {
  readonly #queue: Pending[] = [];
  /** The number of the last notification sent or meant to be (the first is 1). */
  #sequence = 0;
  /** A notification was given up and the marker has not gone out yet. */
  #lost = false;
  #closed = false;
  #pumping: Promise<void> | undefined;
  #cutWait: (() => void) | undefined;

  constructor(private readonly options: RelayPublisherOptions) {}

  /** The number of the last notification sent or meant to be. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Queue a notification; `encode` makes its payload once its number is known. */
  publish(encode: (sequence: number) => string, about: Record<string, unknown> = {}): void {
    if (this.#closed) return;
    this.#queue.push({ encode, about });
    this.#start();
  }

  #start(): void {
    this.#pumping ??= this.#pump().finally(() => {
      this.#pumping = undefined;
      // Queued after the loop found the queue empty, before it ended.
      if (this.#queue.length > 0 && !this.#closed) this.#start();
    });
  }

  async #pump(): Promise<void> {
    for (;;) {
      if (this.#lost) {
        if (!(await this.#sendMarker())) return;
        continue;
      }
      const next = this.#queue.shift();
      if (next === undefined) return;
      const error = await this.#sendTrying(next.encode(++this.#sequence));
      if (error === undefined) continue;
      this.#lost = true;
      this.options.log.error(
        { err: error, ...next.about, sequence: this.#sequence },
        'could not relay a hub event to the other replicas; telling them to catch up from the database instead',
      );
    }
  }

  /** Send `payload`, trying again after each of the retry delays (not once closed); the last error if every try failed. */
  async #sendTrying(payload: string): Promise<unknown> {
    const delays = this.options.retryDelaysMs ?? [100, 1000];
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.send(payload);
        return undefined;
      } catch (err) {
        if (attempt >= delays.length || this.#closed) return err ?? new Error('the send failed');
        await this.#wait(delays[attempt]!);
      }
    }
  }

  /** Try the marker until it goes out (true), or until a try fails after `close` (false). */
  async #sendMarker(): Promise<boolean> {
    const payload = this.options.marker(++this.#sequence);
    const [first, longest] = this.options.markerDelaysMs ?? [100, 5000];
    for (let delayMs = first, told = false; ; delayMs = Math.min(delayMs * 2, longest)) {
      // Emitted before this try: the catch-up it starts covers them.
      this.#queue.length = 0;
      try {
        await this.options.send(payload);
        this.#lost = false;
        this.options.log.info({ sequence: this.#sequence }, 'told the other replicas to catch up on the hub events this replica could not relay');
        return true;
      } catch (err) {
        if (this.#closed) return false;
        if (!told) this.options.log.warn({ err }, 'cannot tell the other replicas yet that they missed hub events; trying again');
        told = true;
      }
      await this.#wait(delayMs);
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(), ms).unref();
      this.#cutWait = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Stop taking notifications. What was queued before still goes out, in order, but each gets one
   * try only (a shutdown must not wait out retries), and a pending marker gets one more try.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cutWait?.();
    await this.#pumping;
  }
}
