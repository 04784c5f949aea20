/**
 * One follower of a live log over a web-socket: the bytes from its offset, then new bytes as they are
 * appended, until the job has ended and everything was sent (`protocol/live-log.ts` has the frames).
 *
 * Memory stays bounded whatever the follower's speed: the follower holds one chunk at a time, read
 * from disk and handed to the socket; the next chunk is read only once the socket has taken the
 * last one (the send callback). A follower that stops reading stalls its own cursor, and nothing else.
 */
import type { WebSocket } from 'ws';
import type { LogFrame } from '../../protocol/live-log.js';
import type { LiveLogStore, LogKey } from './store.js';
import { REVOKED_CLOSE } from '../ws-connections.js';

/** Bytes read from disk and sent per binary frame. */
const CHUNK_BYTES = 64 * 1024;
/** A socket that has not answered a ping for this long is closed (unless the route says otherwise). */
const PING_INTERVAL_MS = 30_000;

export interface FollowerOptions {
  /**
   * Whether the follower's user may still be served, asked at each ping (a password change, a
   * deactivation: see `stillAuthenticated`); absent for an anonymous follower.
   */
  allowed?: () => boolean;
  /** How often the socket is pinged, and the user checked again. */
  pingIntervalMs?: number;
}

export interface FollowedJob {
  /** The job's current attempt and whether it has ended; undefined when the job is gone. */
  current(): { key: LogKey; ended: boolean } | undefined;
  /**
   * Resolves once everything committed before the call is on disk (group commit): what `current()`
   * read before it can then be told. Rejects when that sync fails, or when what was read never
   * committed.
   */
  onDisk(): Promise<void>;
}

/** `allowed()`, where a check that cannot be made (the database closing with the server) allows. */
function stillAllowed(allowed: (() => boolean) | undefined): boolean {
  try {
    return allowed?.() !== false;
  } catch {
    return true;
  }
}

/** A job's attempt and whether it has ended, as one comparable value. */
function stateOf(startTime: string | null, ended: boolean): string {
  return `${startTime ?? ''}|${ended}`;
}

export class LogFollower {
  readonly #socket: WebSocket;
  readonly #store: LiveLogStore;
  readonly #job: FollowedJob;
  #cursor: number;
  #attempt: string | null;
  /** The attempt and ending last read and known to be on disk: a change is told once it is too. */
  #toldState: string;
  #pumping = false;
  #again = false;
  /** The `start` frame has gone: until then a poke only marks that there is something to send. */
  #started = false;
  #closed = false;
  #alive = true;
  readonly #pinger: NodeJS.Timeout;

  constructor(socket: WebSocket, store: LiveLogStore, job: FollowedJob, start: { key: LogKey; offset: number }, options: FollowerOptions = {}) {
    const { allowed, pingIntervalMs = PING_INTERVAL_MS } = options;
    this.#socket = socket;
    this.#store = store;
    this.#job = job;
    this.#cursor = start.offset;
    this.#attempt = start.key.startTime;
    this.#toldState = stateOf(start.key.startTime, false);
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
    socket.on('pong', () => (this.#alive = true));
    // Client frames carry nothing; they are read and dropped.
    socket.on('message', () => {});
    this.#pinger = setInterval(() => {
      if (!this.#alive) {
        socket.terminate();
        return;
      }
      if (!stillAllowed(allowed)) {
        this.close();
        socket.close(REVOKED_CLOSE.code, REVOKED_CLOSE.reason);
        return;
      }
      this.#alive = false;
      socket.ping();
    }, pingIntervalMs);
    this.#pinger.unref();
  }

  /**
   * Send the first frame, then whatever the log holds from the cursor on. Never rejects: a socket that
   * fails the frame (the peer reset it mid-write) is terminated, as a failing pump's is.
   */
  async start(info: { length: number; complete: boolean; maxBytes: number | null }): Promise<void> {
    try {
      await this.#frame({ type: 'start', offset: this.#cursor, length: info.length, complete: info.complete, max_bytes: info.maxBytes });
    } catch {
      this.close();
      this.#socket.terminate();
      return;
    }
    this.#started = true;
    this.#toldState = stateOf(this.#attempt, info.complete);
    this.#again = false;
    this.poke();
  }

  /** Something changed (bytes appended, a transition): send what is new. Never runs twice at once. */
  poke(): void {
    if (this.#closed) return;
    // Appends can come before the follower has told its start (the route looks the log up first):
    // bytes sent then would precede the `start` frame, whose offset the client takes as its cursor.
    if (this.#pumping || !this.#started) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pump()
      .catch(() => this.#socket.terminate())
      .finally(() => {
        this.#pumping = false;
        if (this.#again && !this.#closed) {
          this.#again = false;
          this.poke();
        }
      });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pinger);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async #pump(): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      const job = this.#job.current();
      if (!job) {
        // Hard-deleted. Told once the delete is on disk (group commit), as a transition is: a power
        // cut could yet bring the job back. Should the sync fail, or the delete not commit at all,
        // the follower is ended unexplained (below) and may connect again.
        await this.#job.onDisk();
        this.#socket.close(1008, 'job not found');
        return;
      }
      // The row just read may hold a commit not yet on disk (group commit). A reset or an end tells
      // of a transition, and is told only once that transition is on disk, as every transition is.
      const state = stateOf(job.key.startTime, job.ended);
      if (state !== this.#toldState) {
        await this.#job.onDisk();
        this.#toldState = state;
      }
      if (job.key.startTime !== this.#attempt) {
        // Reset and started again: a new log from 0. A job back in the queue has no log yet.
        this.#attempt = job.key.startTime;
        this.#cursor = 0;
        await this.#frame({ type: 'reset' });
      }
      const piece = await this.#store.piece(job.key, this.#cursor, CHUNK_BYTES);
      if (piece.skipped) {
        await this.#frame({ type: 'dropped', from: piece.skipped.from, to: piece.skipped.to });
        this.#cursor = piece.offset;
      }
      if (piece.length === 0) {
        if (job.ended) {
          await this.#frame({ type: 'end', length: this.#cursor });
          this.close();
          this.#socket.close(1000, 'the job has ended');
        }
        return;
      }
      // A hard delete removes the log: a piece found before may be gone when it is read. The job
      // gone, the loop tells so (1008), as it tells an idle follower; anything else ends the socket.
      const bytes = await this.#store.readPiece(piece).catch((err: unknown) => {
        if (this.#job.current()) throw err;
        return undefined;
      });
      if (bytes === undefined) continue;
      if (bytes.length === 0) return;
      await this.#send(bytes);
      this.#cursor = piece.offset + bytes.length;
    }
  }

  #frame(frame: LogFrame): Promise<void> {
    return this.#send(JSON.stringify(frame));
  }

  /** Resolves once the socket has taken the data (so at most one chunk waits in this process). */
  #send(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) {
        this.close();
        resolve();
        return;
      }
      this.#socket.send(data, { binary: typeof data !== 'string' }, (err) => (err ? reject(err) : resolve()));
    });
  }
}
