/**
 * The heartbeat: `GET /v1/nodes/ping` for every node (slot) that runs a job, on a re-arming timer
 * (the next beat is scheduled after this one finished, so beats never overlap). On a server
 * with lost-node recovery the ping keeps `last_seen` fresh during silent phases (a child that prints
 * nothing for an hour); on any server it keeps {@link ServerContact} fresh, which self-fencing reads.
 */

export interface HeartbeatOptions {
  intervalMs: number;
  /** Ping each node that has a running job; resolves when all pings settled (errors are reported). */
  beat: () => Promise<void>;
  onError?: (err: unknown) => void;
}

export class Heartbeat {
  readonly #options: HeartbeatOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  #beats = 0;

  constructor(options: HeartbeatOptions) {
    this.#options = options;
  }

  get beats(): number {
    return this.#beats;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /** Stop beating; resolves once a beat in progress has settled. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#options
        .beat()
        .catch((err: unknown) => this.#options.onError?.(err))
        .finally(() => {
          this.#beats++;
          this.#running = undefined;
          this.#arm();
        });
    }, this.#options.intervalMs);
    this.#timer.unref();
  }
}
