/**
 * Follow a growing log file line by line, as `tail -F` does: the child appends to `console.log`, the
 * agent reads what is new every `pollMs` from its last offset, in fixed-size chunks, and hands each
 * complete line to a callback. Memory stays bounded whatever the child writes: one chunk, plus at
 * most `maxLineLength` characters of an unfinished line.
 *
 * Polling rather than `fs.watch`: inotify events are coalesced, unavailable on some file systems
 * (NFS, some bind mounts), and a burst of 10 000 lines a second would wake the agent 10 000 times; a
 * poll reads whatever piled up in one go. A following agent costs one `read` per file per poll.
 *
 * Lines end at `\n`, `\r\n` or a lone `\r` (progress bars such as tqdm redraw with `\r`). Empty lines
 * are not delivered.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/** Options of {@link LineFollower}. */
export interface LineFollowerOptions {
  /** Called for every complete, non-empty line (without its terminator). Must not throw. */
  onLine: (line: string) => void;
  /**
   * How often the file is checked for new data.
   * @default 200
   */
  pollMs?: number;
  /**
   * Longer lines are cut to this many characters (the rest up to the newline is dropped).
   * @default 65536
   */
  maxLineLength?: number;
  /**
   * Bytes read per `read` call.
   * @default 65536
   */
  chunkBytes?: number;
  /**
   * Where to start reading (0 = the whole file).
   * @default 0
   */
  startOffset?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

/** Follows one file; see the module comment. `start()` it, `stop()` it once. */
export class LineFollower {
  readonly file: string;
  readonly #onLine: (line: string) => void;
  readonly #pollMs: number;
  readonly #maxLineLength: number;
  readonly #buffer: Buffer;
  #offset: number;
  #decoder = new StringDecoder('utf8');
  #partial = '';
  #handle: FileHandle | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The read in progress; reads never overlap. */
  #reading: Promise<void> = Promise.resolve();
  #stopped = false;
  #lines = 0;

  constructor(file: string, options: LineFollowerOptions) {
    this.file = file;
    this.#onLine = options.onLine;
    this.#pollMs = options.pollMs ?? 200;
    this.#maxLineLength = options.maxLineLength ?? 65536;
    this.#buffer = Buffer.alloc(options.chunkBytes ?? 65536);
    this.#offset = options.startOffset ?? 0;
  }

  /** Bytes of the file consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Lines delivered so far. */
  get lines(): number {
    return this.#lines;
  }

  /** Begin polling. The first read happens at once. */
  start(): void {
    if (this.#stopped || this.#timer) return;
    this.#poll();
  }

  /**
   * Read once to the current end of the file (delivering its complete lines), without polling.
   * Used before {@link start} to replay what a child printed while no one followed it.
   */
  catchUp(): Promise<void> {
    if (this.#stopped) return this.#reading;
    this.#reading = this.#reading.then(() => this.#drain());
    return this.#reading;
  }

  /**
   * Read what is left, deliver a final unterminated line if there is one, and stop. Call it after
   * the child has ended so that its last words are seen.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return this.#reading;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#reading = this.#reading.then(async () => {
      await this.#drain();
      const tail = this.#partial + this.#decoder.end();
      this.#partial = '';
      this.#deliver(tail);
      await this.#handle?.close();
      this.#handle = undefined;
    });
    return this.#reading;
  }

  #poll(): void {
    this.#reading = this.#reading.then(() => this.#drain());
    void this.#reading.then(() => {
      if (this.#stopped) return;
      // Unref'd: following a log must not by itself keep the agent process alive.
      this.#timer = setTimeout(() => this.#poll(), this.#pollMs);
      this.#timer.unref();
    });
  }

  /** Read from the offset to the current end of the file. */
  async #drain(): Promise<void> {
    try {
      this.#handle ??= await open(this.file, 'r');
    } catch {
      return; // not created yet: the child has not started writing
    }
    try {
      const { size } = await this.#handle.stat();
      if (size < this.#offset) {
        // Truncated (log rotation by hand): start over rather than wait for it to regrow.
        this.#offset = 0;
        this.#decoder = new StringDecoder('utf8');
        this.#partial = '';
      }
      for (;;) {
        const { bytesRead } = await this.#handle.read(this.#buffer, 0, this.#buffer.length, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        this.#split(this.#decoder.write(this.#buffer.subarray(0, bytesRead)));
      }
    } catch {
      // A read error (file removed under us) ends nothing: the next poll tries again.
    }
  }

  #split(text: string): void {
    const pieces = text.split(LINE_BREAK);
    // Every piece but the last is complete; the last continues on the next read.
    for (let i = 0; i < pieces.length - 1; i++) {
      const line = i === 0 ? this.#partial + pieces[0]! : pieces[i]!;
      if (i === 0) this.#partial = '';
      this.#deliver(line);
    }
    const last = pieces[pieces.length - 1]!;
    this.#partial = pieces.length === 1 ? this.#partial + last : last;
    if (this.#partial.length > this.#maxLineLength) this.#partial = this.#partial.slice(0, this.#maxLineLength);
  }

  #deliver(line: string): void {
    if (line === '') return;
    this.#lines++;
    this.#onLine(line.length > this.#maxLineLength ? line.slice(0, this.#maxLineLength) : line);
  }
}
