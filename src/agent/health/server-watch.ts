/**
 * Keeping in touch with the server while jobs run: the {@link Heartbeat} pings the nodes of busy slots
 * (so the server's `last_seen` stays fresh and {@link ServerContact} learns of an outage), and — when
 * the server has lost-node recovery — the {@link Fence} stops the running children before the server
 * would give their jobs to another node (docs/ARCHITECTURE.md, "Self-fencing"). While fenced the agent takes no
 * job; the first answer from the server lifts the fence.
 */
import type { Capabilities } from '../../protocol/wire.js';
import type { ServerContact } from '../server-contact.js';
import { Fence, fenceThresholdMs } from './fence.js';
import { Heartbeat } from './heartbeat.js';
import type { JournalPort, NodeApi } from '../ports.js';

/** What the heartbeat needs of a node's client. */
type NodePing = Pick<NodeApi, 'ping'>;

/** A job whose child runs now, as the fence sees it. */
export interface RunningJob {
  readonly jobPk: number;
  stop(reason: 'fenced'): void;
}

export interface ServerWatchContext {
  contact: ServerContact;
  capabilities: Capabilities | null | undefined;
  heartbeatIntervalMs: number;
  fenceMarginMs: number;
  journal: Pick<JournalPort, 'record'>;
  log: { info(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /**
   * The clients of the nodes that jobs in flight report as, each once (a job recovery continued may
   * report as a node no slot of the plan registers), and the first slot's node's.
   */
  busyNodes(): NodePing[];
  firstNode(): NodePing | undefined;
  /** The runners whose child runs now. */
  withChild(): RunningJob[];
  /** After each beat (its pings may have changed what is known of the server). */
  afterBeat(): void;
  /** The fence was raised: these jobs are being stopped. */
  onFenced(e: { jobs: number[]; silentMs: number }): void;
  /** The server answered after self-fencing: the agent may take jobs again. */
  onFenceLifted(): void;
}

export class ServerWatch {
  readonly #ctx: ServerWatchContext;
  readonly #heartbeat: Heartbeat;
  readonly #fence: Fence | undefined;
  #fenced = false;

  constructor(ctx: ServerWatchContext) {
    this.#ctx = ctx;
    const lost = ctx.capabilities?.extensions.lost_node;
    const threshold = lost ? fenceThresholdMs(lost.lost_after_seconds, ctx.fenceMarginMs) : null;
    const beatMs = threshold === null ? ctx.heartbeatIntervalMs : Math.min(ctx.heartbeatIntervalMs, threshold / 4);
    this.#heartbeat = new Heartbeat({ intervalMs: beatMs, beat: () => this.#beat() });
    if (threshold !== null) {
      this.#fence = new Fence({
        contact: ctx.contact,
        thresholdMs: threshold,
        hasRunningJobs: () => ctx.withChild().length > 0,
        onFence: (silentMs) => this.#fenceNow(silentMs),
      });
    }
  }

  /** True from self-fencing until the server answers again. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** The fence's threshold and how often it fired; null without lost-node recovery. */
  get fence(): { thresholdMs: number; fencedCount: number } | null {
    return this.#fence ? { thresholdMs: this.#fence.thresholdMs, fencedCount: this.#fence.fencedCount } : null;
  }

  start(): void {
    this.#heartbeat.start();
    this.#fence?.start();
  }

  stopHeartbeat(): Promise<void> {
    return this.#heartbeat.stop();
  }

  stopFence(): void {
    this.#fence?.stop();
  }

  async #beat(): Promise<void> {
    // While fenced with nothing running, one ping notices the server's return (nothing else asks).
    const busy = this.#ctx.busyNodes();
    const first = this.#ctx.firstNode();
    const nodes = busy.length === 0 && this.#fenced && first ? [first] : busy;
    await Promise.allSettled(nodes.map((n) => n.ping()));
    this.#ctx.afterBeat();
  }

  #fenceNow(silentMs: number): void {
    const { log, journal } = this.#ctx;
    const jobs = this.#ctx.withChild();
    this.#fenced = true;
    log.error(
      { silentMs, thresholdMs: this.#fence?.thresholdMs, jobs: jobs.map((r) => r.jobPk) },
      'SELF-FENCING: the server has been unreachable too long; stopping running jobs before the server gives them to another node',
    );
    for (const runner of jobs) {
      try {
        journal.record(runner.jobPk, { lastError: `fenced after ${Math.round(silentMs / 1000)} s without the server` });
      } catch {
        // the journal may not have the row any more
      }
      try {
        runner.stop('fenced');
      } catch (err) {
        // One runner's failure (a bug) must not leave the jobs after it running unfenced.
        log.error({ err, job: runner.jobPk }, 'could not stop a job for the fence');
      }
    }
    this.#ctx.onFenced({ jobs: jobs.map((r) => r.jobPk), silentMs });
    // Accept work again once the server answers.
    const off = this.#ctx.contact.onReachable(() => {
      off();
      this.#fenced = false;
      log.info({}, 'the server answers again after self-fencing');
      this.#ctx.onFenceLifted();
    });
  }
}
