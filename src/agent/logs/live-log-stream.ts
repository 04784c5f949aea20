/**
 * Sends a running job's console output to the server's live log (the live-log extension,
 * `protocol/live-log.ts`) while the job runs: what the child wrote to `console.log` since the last
 * send, at most every `intervalMs` or as soon as `chunkBytes` have piled up, in requests of at most
 * `maxRequestBytes`.
 *
 * The child writes to the file and never waits for the agent; this reads behind it, one request's
 * worth of bytes at a time, so memory stays bounded whatever the child prints. Each append names its
 * offset, so a retried append, or an agent restarted after a crash (the offset and the cap are in the
 * journal), never duplicates or loses a byte: the server ignores bytes it has, and answers a gap with
 * its length, from which this resends. When it falls behind by more than two tail cells of the cap,
 * it skips ahead to a cell boundary, since the server would drop those bytes anyway.
 *
 * Streaming is best effort: if the server refuses (the job is no longer ours) this stops; if it is
 * unreachable this retries at the next tick. The job's `log` output is uploaded at the end either way.
 */
import { open, stat } from 'node:fs/promises';
import { isClientError } from '../../client/errors.js';
import { gapLength } from '../../client/live-log.js';
import { cellIndex, cellStart, logGrid, MAX_APPEND_BYTES, type LogGrid } from '../../protocol/live-log.js';
import type { LogPort, NodeApi } from '../ports.js';

/** What a stream needs of the journal (`Journal.liveLog`, `Journal.recordLiveLog`). */
export interface LiveLogJournal {
  liveLog(jobPk: number): { sent: number; maxBytes: number } | undefined;
  recordLiveLog(jobPk: number, state: { sent: number; maxBytes: number }): void;
}

/** How a job's live log is sent; `null` in the runner's dependencies when the server lacks the extension. */
export interface LiveLogSettings {
  /** The cap of a log begun now (an earlier attempt of the agent keeps its journalled cap). */
  maxBytes: number;
  /** @default 1000 */
  intervalMs?: number;
  /** @default 65536 */
  chunkBytes?: number;
  /** @default MAX_APPEND_BYTES (1 MiB) */
  maxRequestBytes?: number;
  /** How often the file is looked at. @default 200 */
  pollMs?: number;
  /** Least time between two journal writes of the offset. @default 1000 */
  journalIntervalMs?: number;
}

export interface LiveLogPorts {
  api: Pick<NodeApi, 'appendLog'>;
  journal: LiveLogJournal;
  log: Pick<LogPort, 'debug' | 'info' | 'warn'>;
}

/** Attempts of the final flush before the stream gives up (the `log` output still goes up). */
const FLUSH_ATTEMPTS = 3;

export class LiveLogStream {
  readonly jobPk: number;
  readonly file: string;
  readonly #ports: LiveLogPorts;
  readonly #grid: LogGrid;
  readonly #intervalMs: number;
  readonly #chunkBytes: number;
  readonly #maxRequestBytes: number;
  readonly #pollMs: number;
  readonly #journalIntervalMs: number;
  #sent: number;
  #journalled: number;
  #lastJournalMs = 0;
  #lastSendMs = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Set once the server refused for good (the job is not ours, the route is gone). */
  #refused = false;
  #unreachableSince: number | undefined;
  /** A read of the file failed (said once until a send succeeds again). */
  #readFailing = false;

  constructor(jobPk: number, file: string, ports: LiveLogPorts, settings: LiveLogSettings) {
    this.jobPk = jobPk;
    this.file = file;
    this.#ports = ports;
    const journalled = ports.journal.liveLog(jobPk);
    this.#grid = logGrid(journalled?.maxBytes ?? settings.maxBytes);
    this.#sent = journalled?.sent ?? 0;
    this.#journalled = this.#sent;
    this.#intervalMs = settings.intervalMs ?? 1000;
    this.#chunkBytes = settings.chunkBytes ?? 64 * 1024;
    this.#maxRequestBytes = Math.min(settings.maxRequestBytes ?? MAX_APPEND_BYTES, MAX_APPEND_BYTES);
    this.#pollMs = settings.pollMs ?? 200;
    this.#journalIntervalMs = settings.journalIntervalMs ?? 1000;
  }

  /** The cap this job's log uses (also the cap of its final `log` output). */
  get maxBytes(): number {
    return this.#grid.maxBytes;
  }

  /** Bytes the server has acknowledged. */
  get sent(): number {
    return this.#sent;
  }

  /** Begin following the file. */
  start(): void {
    if (this.#stopped || this.#timer) return;
    this.#schedule();
  }

  /** Stop following and journal the offset (no final send; see {@link flush}). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    this.#journal(true);
  }

  /**
   * Send everything the file holds now (after the child has ended), retrying a few times, and record
   * the offset. Returns whether the server has it all.
   */
  async flush(signal?: AbortSignal): Promise<boolean> {
    await this.stop();
    for (let attempt = 1; attempt <= FLUSH_ATTEMPTS && !this.#refused && !signal?.aborted; attempt++) {
      const size = await sizeOf(this.file);
      if (await this.#sendUpTo(size)) {
        this.#journal(true);
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
    this.#journal(true);
    return false;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#running = this.#tick().finally(() => {
        if (!this.#stopped && !this.#refused) this.#schedule();
      });
    }, this.#pollMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const size = await sizeOf(this.file);
    const pending = size - this.#sent;
    if (pending <= 0) {
      this.#lastSendMs = Date.now();
      return;
    }
    if (pending < this.#chunkBytes && Date.now() - this.#lastSendMs < this.#intervalMs) return;
    // After a failure, wait an interval before the next try.
    if (this.#unreachableSince !== undefined && Date.now() - this.#lastSendMs < this.#intervalMs) return;
    await this.#sendUpTo(size);
    this.#lastSendMs = Date.now();
    this.#journal(false);
  }

  /** Append `[sent, target)`; false when a request failed (the bytes stay in the file for later). */
  async #sendUpTo(target: number): Promise<boolean> {
    while (this.#sent < target && !this.#refused) {
      this.#skipIfFarBehind(target);
      const length = Math.min(this.#maxRequestBytes, target - this.#sent);
      let bytes: Buffer;
      try {
        bytes = await readRange(this.file, this.#sent, length);
      } catch (err) {
        // The file is in the job's working directory, where its code may remove or replace it (with
        // a directory, say). A read that fails is a send that failed, never an error that escapes
        // the timer's tick (an unhandled rejection would end the agent).
        this.#unreadable(err);
        return false;
      }
      if (bytes.length === 0) return true;
      try {
        const result = await this.#ports.api.appendLog(this.jobPk, this.#sent, bytes, this.#grid.maxBytes);
        this.#sent = Math.max(this.#sent, result.length);
        this.#reachable();
      } catch (err) {
        const length = gapLength(err);
        if (length !== undefined) {
          // The server has less than we thought (it restarted, or another attempt's journal): resend.
          this.#ports.log.debug({ from: this.#sent, to: length }, 'live log: the server asks to resend from its length');
          this.#sent = length;
          continue;
        }
        this.#failed(err);
        return false;
      }
    }
    return !this.#refused;
  }

  /** Far behind the child, past the head: jump to where the server's kept tail will begin. */
  #skipIfFarBehind(target: number): void {
    const grid = this.#grid;
    if (this.#sent < grid.headBytes || target - this.#sent <= 2 * grid.cellBytes) return;
    const to = cellStart(grid, cellIndex(grid, target - 1) - 1);
    if (to > this.#sent) this.#sent = to;
  }

  #unreadable(err: unknown): void {
    if (this.#readFailing) return;
    this.#readFailing = true;
    this.#ports.log.warn({ file: this.file, err: err instanceof Error ? err.message : String(err) }, 'live log: cannot read the console output; retrying');
  }

  #reachable(): void {
    this.#readFailing = false;
    if (this.#unreachableSince !== undefined) {
      this.#ports.log.info({ sent: this.#sent }, 'live log: the server takes appends again');
      this.#unreachableSince = undefined;
    }
  }

  #failed(err: unknown): void {
    const kind = isClientError(err) ? err.kind : undefined;
    if (kind === 'phase' || kind === 'forbidden' || kind === 'not-found' || kind === 'bad-request' || kind === 'too-large') {
      this.#refused = true;
      this.#ports.log.info({ err: err instanceof Error ? err.message : String(err) }, 'live log: the server refused an append; the log goes up at the end only');
      return;
    }
    if (this.#unreachableSince === undefined) {
      this.#unreachableSince = Date.now();
      this.#ports.log.warn({ err: err instanceof Error ? err.message : String(err), retryMs: this.#intervalMs }, 'live log: cannot send to the server; retrying');
    }
  }

  #journal(force: boolean): void {
    if (this.#sent === this.#journalled) return;
    if (!force && Date.now() - this.#lastJournalMs < this.#journalIntervalMs) return;
    try {
      this.#ports.journal.recordLiveLog(this.jobPk, { sent: this.#sent, maxBytes: this.#grid.maxBytes });
      this.#journalled = this.#sent;
      this.#lastJournalMs = Date.now();
    } catch (err) {
      // The offset is an optimisation: without it the next agent resends what the server has.
      this.#ports.log.warn({ err: String(err) }, 'live log: could not journal the offset');
    }
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function readRange(file: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
