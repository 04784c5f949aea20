/**
 * Self-fencing (docs/ARCHITECTURE.md, "Self-fencing"). A server with lost-node recovery
 * aborts the jobs of a node it has not heard from for `lost_after_seconds`, so that another node can
 * run them. If this agent cannot reach the server for that long, its children must stop *before* the
 * server gives their jobs away, or a job would run twice at once. The fence fires once the server has
 * been unreachable for `lost_after − fenceMarginMs` while jobs run; the job runners then stop their
 * children and report consistently when the server answers again.
 */

import { SYSTEM_CLOCK, type Clock, type ServerContact } from '../server-contact.js';

/**
 * The fence threshold: `lost_after − margin`, but never less than half of `lost_after` (a margin larger
 * than the server's limit would fence on every blip).
 */
export function fenceThresholdMs(lostAfterSeconds: number, marginMs: number): number {
  const lostAfterMs = lostAfterSeconds * 1000;
  return Math.max(lostAfterMs - marginMs, lostAfterMs / 2);
}

export interface FenceOptions {
  contact: ServerContact;
  thresholdMs: number;
  /** Whether any job runs now: nothing to fence otherwise. */
  hasRunningJobs: () => boolean;
  /** Stop the children; called once per outage. */
  onFence: (unreachableForMs: number) => void;
  clock?: Clock;
}

/**
 * A re-arming check that fires {@link FenceOptions.onFence} once per outage. It checks
 * often enough to fire within a tenth of the threshold (at most once a second).
 */
export class Fence {
  readonly #options: FenceOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** When the fence fired in the current outage, or null. */
  #fencedAt: number | null = null;
  #fencedCount = 0;

  constructor(options: FenceOptions) {
    this.#options = options;
  }

  get fencedCount(): number {
    return this.#fencedCount;
  }

  get thresholdMs(): number {
    return this.#options.thresholdMs;
  }

  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One check; exposed for tests. */
  check(): boolean {
    const { contact, thresholdMs, hasRunningJobs, onFence } = this.#options;
    if (this.#fencedAt !== null) {
      // Re-arm once the server answered again (the runners then report the fenced jobs).
      if (contact.lastOkAt <= this.#fencedAt) return false;
      this.#fencedAt = null;
    }
    const silentMs = contact.silentForMs();
    if (silentMs < thresholdMs || !hasRunningJobs()) return false;
    this.#fencedAt = (this.#options.clock ?? SYSTEM_CLOCK).now();
    this.#fencedCount++;
    onFence(silentMs);
    return true;
  }

  #arm(): void {
    if (this.#stopped) return;
    const everyMs = Math.min(1000, Math.max(50, this.#options.thresholdMs / 10));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.check();
      } finally {
        this.#arm();
      }
    }, everyMs);
    this.#timer.unref();
  }
}
