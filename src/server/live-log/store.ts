/**
 * Live job logs on disk (the live-log extension; `protocol/live-log.ts` has the grid). One directory
 * per job and attempt, `<root>/<job pk>/<attempt>/`, where the attempt is the job's start time (a job
 * that is reset and started again gets a new directory; the old one is removed then):
 *
 * ```
 * max-bytes        the cap the agent began the log with (written once, atomically)
 * seg-0.log        the head: bytes [0, head)
 * seg-<start>.log  a tail cell: bytes [start, start + cell); only the last two are kept
 * ```
 *
 * (Before schema 11 the attempt's progress history was a `progress.jsonl` here too; it is in the
 * database now, and progress-history.ts still reads such a file for the attempts it has no row of.)
 *
 * Nothing is held in memory but a small state per log (its length and which cells exist): bytes go
 * from the request straight to the file and from the file straight to the reader. The length is the
 * sum of what the files hold, so a server killed mid-append restarts with a correct prefix, and the
 * appender's next offset either continues it or is told the length to resend from (the gap answer).
 * Appends are not fsync'd: the live log is a view while the job runs; the durable record is the job's
 * `log` output, which the agent uploads at the end.
 */
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UfdlError } from '../../protocol/errors.js';
import { cellIndex, cellStart, droppedRange, keptFrom, logGrid, type LogGrid } from '../../protocol/live-log.js';

/** Which attempt of which job: the job pk and its start time (null: not started, no log). */
export interface LogKey {
  pk: number;
  startTime: string | null;
}

/** A log as readers see it. */
export interface LogInfo {
  length: number;
  /** The cap, or null while nothing was appended. */
  maxBytes: number | null;
  dropped: { from: number; to: number } | undefined;
}

/** A contiguous piece of the log: `[offset, offset + length)` from one file. */
export interface LogPiece {
  /** Where the piece begins: the asked-for offset, or later when a dropped range was skipped. */
  offset: number;
  length: number;
  file: string;
  /** Position of `offset` in `file`. */
  position: number;
  /** Set when a dropped range lay between the asked-for offset and `offset`. */
  skipped?: { from: number; to: number };
}

interface LogState {
  attempt: string;
  dir: string;
  grid: LogGrid | undefined;
  headLength: number;
  /** Tail cells present on disk, ascending, with their lengths. */
  cells: { index: number; length: number }[];
  length: number;
}

export interface LiveLogEvents {
  /** Bytes were appended to job `pk`'s log; it is now `length` long. */
  appended: [pk: number, length: number];
}

/** At most this many logs' states are cached; the least recently used are dropped (reloaded from disk). */
const STATE_CACHE_SIZE = 4096;

export class LiveLogStore extends EventEmitter<LiveLogEvents> {
  readonly root: string;
  readonly #maxBytesLimit: number;
  readonly #states = new Map<number, LogState>();
  /** Per job, the tail of its queue of appends and removals: they never interleave. */
  readonly #queues = new Map<number, Promise<unknown>>();
  /** Per job with loads from disk in flight: how many, and how often the log changed meanwhile. */
  readonly #loads = new Map<number, { count: number; stale: number }>();
  /** Whether job `pk` still has its row (set by `init`). */
  #existingJob: (pk: number) => boolean = () => true;

  constructor(root: string, options: { maxBytesLimit: number }) {
    super();
    this.setMaxListeners(0);
    this.root = root;
    this.#maxBytesLimit = options.maxBytesLimit;
  }

  async init(existingJob: (pk: number) => boolean): Promise<void> {
    this.#existingJob = existingJob;
    await mkdir(this.root, { recursive: true });
    // Logs of jobs hard-deleted while the server was down.
    for (const name of await readdir(this.root)) {
      const pk = Number(name);
      if (!/^\d+$/.test(name) || !existingJob(pk)) await rm(join(this.root, name), { recursive: true, force: true });
    }
  }

  /** The directory of the attempt (created on demand by writers). */
  attemptDir(key: LogKey): string | undefined {
    const attempt = attemptName(key);
    return attempt === undefined ? undefined : join(this.root, String(key.pk), attempt);
  }

  /** Make sure the attempt's directory exists and is the only one of the job (a new attempt removes the old). */
  async ensureAttemptDir(key: LogKey): Promise<string> {
    const attempt = attemptName(key);
    if (attempt === undefined) throw new Error(`job ${key.pk} has not started: it has no log`);
    const jobDir = join(this.root, String(key.pk));
    const dir = join(jobDir, attempt);
    // mkdir answers the first directory it made: when that is the job's own (or above), the job had
    // no directory, so no older attempt to remove, and the listing (a thread-pool round trip per job)
    // is skipped.
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined && created !== dir) return dir;
    for (const name of await readdir(jobDir)) if (name !== attempt) await rm(join(jobDir, name), { recursive: true, force: true });
    return dir;
  }

  async info(key: LogKey): Promise<LogInfo> {
    const state = await this.#state(key, false);
    if (!state?.grid) return { length: state?.length ?? 0, maxBytes: null, dropped: undefined };
    return { length: state.length, maxBytes: state.grid.maxBytes, dropped: droppedRange(state.grid, state.length) };
  }

  /**
   * Append `bytes` at `offset` (see the module comment of `protocol/live-log.ts`): at the length it
   * continues the log; bytes it already has are ignored; beyond the length it is a gap (416 with the
   * length), except a skip to a tail cell boundary, which drops what lies between. Returns the new length.
   */
  append(key: LogKey, offset: number, bytes: Buffer, maxBytes: number): Promise<number> {
    if (maxBytes > this.#maxBytesLimit) {
      throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `max_bytes ${maxBytes} is above this server's limit of ${this.#maxBytesLimit} bytes (capabilities: live_logs.max_bytes)`);
    }
    return this.#inTurn(key.pk, () => this.#append(key, offset, bytes, logGrid(maxBytes)));
  }

  /**
   * The contiguous piece of the log that begins at `offset` (or at the first kept byte after it), at
   * most `limit` bytes; `length: 0` at the end. Offsets beyond the length are the caller's to refuse.
   */
  async piece(key: LogKey, offset: number, limit: number): Promise<LogPiece> {
    const state = await this.#state(key, false);
    if (!state || offset >= state.length) return { offset, length: 0, file: '', position: 0 };
    if (!state.grid || offset < state.grid.headBytes) {
      const end = Math.min(state.headLength, state.grid?.headBytes ?? state.headLength);
      return { offset, length: Math.min(limit, end - offset), file: join(state.dir, 'seg-0.log'), position: offset };
    }
    const grid = state.grid;
    const wanted = cellIndex(grid, offset);
    // A cell that ends before `offset` (a partial one before a skip) holds nothing for it.
    const cell = state.cells.find((c) => c.index >= wanted && cellStart(grid, c.index) + c.length > offset);
    if (!cell) return { offset: state.length, length: 0, file: '', position: 0 };
    const start = cellStart(grid, cell.index);
    const from = Math.max(offset, start);
    const piece: LogPiece = {
      offset: from,
      length: Math.min(limit, start + cell.length - from),
      file: join(state.dir, `seg-${start}.log`),
      position: from - start,
    };
    if (from > offset) piece.skipped = { from: offset, to: from };
    return piece;
  }

  /** Read a piece's bytes (at most `piece.length`; fewer if the file was replaced meanwhile). */
  async readPiece(piece: LogPiece): Promise<Buffer> {
    if (piece.length === 0) return Buffer.alloc(0);
    const handle = await open(piece.file, 'r');
    try {
      const buffer = Buffer.allocUnsafe(piece.length);
      const { bytesRead } = await handle.read(buffer, 0, piece.length, piece.position);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /**
   * Another server process on the same data directory (a replica) appended to job `pk`'s log: the
   * cached state is stale, so the next read loads it from disk.
   */
  appendedElsewhere(pk: number): void {
    this.#forgetState(pk);
  }

  /**
   * Other server processes on the data directory (replicas) may have appended to any log without
   * this one hearing of it: every cached state is stale, so the next read of each loads it from disk.
   */
  changedElsewhere(): void {
    for (const pk of [...this.#states.keys(), ...this.#loads.keys()]) this.#forgetState(pk);
  }

  /**
   * Forget job `pk`'s logs (hard delete of the job): once the appends already under way are done,
   * so that none of them finds its files gone half-way. An append admitted before the delete that
   * runs after it finds the job gone (404) instead of making its directory again.
   */
  remove(pk: number): Promise<void> {
    this.#forgetState(pk);
    return this.#inTurn(pk, () => rm(join(this.root, String(pk)), { recursive: true, force: true }));
  }

  /** Run `task` after job `pk`'s earlier appends and removals, whatever became of them. */
  #inTurn<T>(pk: number, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(pk) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.#queues.set(pk, tail);
    void tail.then(() => {
      if (this.#queues.get(pk) === tail) this.#queues.delete(pk);
    });
    return next;
  }

  async #append(key: LogKey, offset: number, bytes: Buffer, grid: LogGrid): Promise<number> {
    // Read from disk, not the cache: another server process on the same data directory (a replica
    // the agent failed over to) may have appended since this one last did.
    const state = (await this.#state(key, true, true))!;
    if (state.grid === undefined) {
      await writeAtomically(join(state.dir, 'max-bytes'), `${grid.maxBytes}\n`);
      state.grid = grid;
    } else if (state.grid.maxBytes !== grid.maxBytes) {
      throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `this log was begun with max_bytes ${state.grid.maxBytes}; got ${grid.maxBytes}`);
    }
    if (offset > state.length) {
      if (!isSkip(grid, state.length, offset)) throw gap(key.pk, state.length);
      // A lagging appender skips to a tail cell boundary: everything before it is dropped anyway.
      for (const cell of state.cells) await rm(cellPath(state, cell.index), { force: true });
      state.cells = [];
      state.length = offset;
    }
    let position = state.length;
    let data = bytes.subarray(Math.min(bytes.length, position - offset));
    while (data.length > 0) {
      const room = position < grid.headBytes ? grid.headBytes - position : cellStart(grid, cellIndex(grid, position) + 1) - position;
      const chunk = data.subarray(0, room);
      if (position < grid.headBytes) {
        await appendTo(join(state.dir, 'seg-0.log'), chunk);
        state.headLength += chunk.length;
      } else {
        await this.#appendToCell(state, cellIndex(grid, position), chunk);
      }
      position += chunk.length;
      data = data.subarray(chunk.length);
    }
    if (position > state.length) {
      state.length = position;
      this.emit('appended', key.pk, position);
    }
    return state.length;
  }

  async #appendToCell(state: LogState, index: number, chunk: Buffer): Promise<void> {
    let cell = state.cells.at(-1);
    if (cell?.index !== index) {
      cell = { index, length: 0 };
      state.cells.push(cell);
      // The new cell is written before older ones go, so a crash in between leaves more, not less.
      await appendTo(cellPath(state, index), chunk);
      cell.length = chunk.length;
      for (const old of state.cells.filter((c) => c.index < index - 1)) await rm(cellPath(state, old.index), { force: true });
      state.cells = state.cells.filter((c) => c.index >= index - 1);
      return;
    }
    await appendTo(cellPath(state, index), chunk);
    cell.length += chunk.length;
  }

  /** Drop the cached state (another process changed the log, or it is gone). */
  #forgetState(pk: number): void {
    this.#states.delete(pk);
    this.#changedDuringLoads(pk);
  }

  /** The log changed: a load from disk in flight may have read the files before, and must not be kept. */
  #changedDuringLoads(pk: number): void {
    const load = this.#loads.get(pk);
    if (load) load.stale++;
  }

  /**
   * The attempt's directory, made for a writer: only while the job has its row. A hard delete
   * removes the log (`remove`); an append that comes after it must not make it again. Asked here,
   * where a directory would be made, rather than at every append: the route has just found the job,
   * and appends and removals of one job take turns.
   */
  async #makeAttemptDir(key: LogKey): Promise<string> {
    if (!this.#existingJob(key.pk)) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
    return this.ensureAttemptDir(key);
  }

  /** The cached state of the attempt, loaded from disk; created when `create` (writers). */
  async #state(key: LogKey, create: boolean, fresh = false): Promise<LogState | undefined> {
    const attempt = attemptName(key);
    if (attempt === undefined) return undefined;
    const cached = this.#states.get(key.pk);
    if (cached && cached.attempt === attempt && !fresh) {
      // Most recently used last.
      this.#states.delete(key.pk);
      this.#states.set(key.pk, cached);
      return cached;
    }
    // The attempt's directory is made (and older attempts' removed) once; a fresh read of a known
    // attempt only reloads its files.
    const known = cached?.attempt === attempt;
    let load = this.#loads.get(key.pk);
    if (!load) this.#loads.set(key.pk, (load = { count: 0, stale: 0 }));
    load.count++;
    const staleBefore = load.stale;
    let state: LogState | undefined;
    try {
      const dir = create && !known ? await this.#makeAttemptDir(key) : join(this.root, String(key.pk), attempt);
      state = await loadState(dir, attempt);
      // Gone meanwhile (removed through another server process): a writer makes it again.
      if (!state && create && known) state = await loadState(await this.#makeAttemptDir(key), attempt);
    } finally {
      if (--load.count === 0) this.#loads.delete(key.pk);
    }
    if (!state) return undefined;
    // The log changed while this loaded (another replica appended, or an appender here cached the
    // state it goes on to update): what this read may be older. It answers this call and is not
    // kept — kept, the log looked shorter than it was until the next append.
    if (load.stale !== staleBefore) return state;
    // An appender's state is the one it updates with each append: loads still in flight are older.
    if (fresh) this.#changedDuringLoads(key.pk);
    this.#states.delete(key.pk);
    this.#states.set(key.pk, state);
    if (this.#states.size > STATE_CACHE_SIZE) this.#states.delete(this.#states.keys().next().value!);
    return state;
  }
}

/** The attempt's directory name: its start time in ms (digits only, so it is always a safe path). */
function attemptName(key: LogKey): string | undefined {
  if (key.startTime === null) return undefined;
  const ms = Date.parse(key.startTime);
  return Number.isFinite(ms) ? String(ms) : undefined;
}

function isSkip(grid: LogGrid, length: number, offset: number): boolean {
  return length >= grid.headBytes && offset >= keptFrom(grid, length) && (offset - grid.headBytes) % grid.cellBytes === 0;
}

function gap(pk: number, length: number): UfdlError {
  return new UfdlError('UFDL_ERR_LOG_GAP', `The log of job ${pk} is ${length} bytes long; append from offset ${length}`, { extra: { length } });
}

function cellPath(state: LogState, index: number): string {
  return join(state.dir, `seg-${cellStart(state.grid!, index)}.log`);
}

async function appendTo(file: string, chunk: Buffer): Promise<void> {
  const handle = await open(file, 'a');
  try {
    await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Rebuild a log's state from its files; undefined when the attempt has no directory. */
async function loadState(dir: string, attempt: string): Promise<LogState | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  let grid: LogGrid | undefined;
  try {
    grid = logGrid(Number((await readFile(join(dir, 'max-bytes'), 'utf8')).trim()));
  } catch {
    grid = undefined;
  }
  const headLength = await sizeOf(join(dir, 'seg-0.log'));
  const state: LogState = { attempt, dir, grid, headLength, cells: [], length: headLength };
  if (!grid) return state;
  const starts = names
    .map((n) => /^seg-(\d+)\.log$/.exec(n)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number)
    .filter((s) => s > 0)
    .sort((a, b) => a - b);
  // Tail cells only count after a full head, and only the last two (a crash between writing a new
  // cell and removing an old one leaves three).
  if (headLength < grid.headBytes) {
    for (const start of starts) await rm(join(dir, `seg-${start}.log`), { force: true });
    return state;
  }
  for (const start of starts) {
    const index = cellIndex(grid, start);
    if (cellStart(grid, index) !== start) continue;
    state.cells.push({ index, length: await sizeOf(join(dir, `seg-${start}.log`)) });
  }
  const last = state.cells.at(-1);
  for (const cell of state.cells.filter((c) => last && c.index < last.index - 1)) await rm(cellPath(state, cell.index), { force: true });
  state.cells = state.cells.filter((c) => last && c.index >= last.index - 1);
  if (last) state.length = cellStart(grid, last.index) + last.length;
  return state;
}
