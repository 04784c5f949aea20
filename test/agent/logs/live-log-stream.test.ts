/**
 * The agent's live-log sender against the server's log store directly (no HTTP): resuming from the
 * journalled offset, resending from the length a gap answer names, and skipping ahead when it falls
 * far behind — after which what the store kept still equals the job's `log` output.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LiveLogStream, type LiveLogJournal } from '../../../src/agent/logs/live-log-stream.js';
import { writeJobLog } from '../../../src/agent/outputs/job-log.js';
import { jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { droppedMarker } from '../../../src/protocol/live-log.js';
import { UfdlError } from '../../../src/protocol/errors.js';
import { ClientError } from '../../../src/client/errors.js';
import { LiveLogStore } from '../../../src/server/live-log/store.js';
import { tempDir } from '../../helpers/temp-dir.js';

const KEY = { pk: 7, startTime: '2026-01-01T00:00:00.000Z' };
const quiet = { debug() {}, info() {}, warn() {} };

/** A journal that remembers the last record, and a server that is the real store. */
async function rig() {
  const root = await tempDir('ufdl-stream-');
  const store = new LiveLogStore(join(root, 'server'), { maxBytesLimit: 1 << 30 });
  await store.init(() => true);
  const appends: number[] = [];
  const api = {
    async appendLog(_pk: number, offset: number, bytes: Buffer, maxBytes: number) {
      appends.push(offset);
      try {
        return { length: await store.append(KEY, offset, bytes, maxBytes) };
      } catch (err) {
        // As the client sees a refusal: a ClientError with the status and the JSON body.
        if (err instanceof UfdlError) {
          throw new ClientError({ kind: 'bad-request', method: 'POST', path: '/log', status: err.statusCode, detail: err.message, body: { detail: err.message, ...err.extra } });
        }
        throw err;
      }
    },
  };
  let record: { sent: number; maxBytes: number } | undefined;
  const journal: LiveLogJournal = { liveLog: () => record, recordLiveLog: (_pk, state) => (record = state) };
  const dir = jobDirPaths(join(root, 'work'), 'http://ufdl.test', KEY.pk);
  await mkdir(dir.root, { recursive: true });
  /** Everything the store holds, read back piece by piece with the marker where it dropped bytes. */
  const stored = async () => {
    const parts: Buffer[] = [];
    let offset = 0;
    const { length, maxBytes } = await store.info(KEY);
    while (offset < length) {
      const piece = await store.piece(KEY, offset, 1 << 20);
      if (piece.skipped) parts.push(Buffer.from(droppedMarker(piece.skipped.from, piece.skipped.to, maxBytes!)));
      parts.push(await store.readPiece(piece));
      offset = piece.offset + piece.length;
    }
    return Buffer.concat(parts);
  };
  return { store, api, journal, dir, appends, stored, record: () => record };
}

/** `n` bytes of numbered lines. */
function lines(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `line ${String(from + i).padStart(8, '0')}\n`).join('');
}

describe('LiveLogStream', () => {
  it('resumes from the journalled offset, and resends from the length a gap names', async () => {
    const r = await rig();
    await writeFile(r.dir.consolePath, lines(0, 100));
    const first = new LiveLogStream(KEY.pk, r.dir.consolePath, { api: r.api, journal: r.journal, log: quiet }, { maxBytes: 1 << 20 });
    expect(await first.flush()).toBe(true);
    expect(r.record()).toEqual({ sent: 1400, maxBytes: 1 << 20 });
    // A later agent continues where the journal says, not from 0.
    await appendFile(r.dir.consolePath, lines(100, 50));
    r.appends.length = 0;
    const second = new LiveLogStream(KEY.pk, r.dir.consolePath, { api: r.api, journal: r.journal, log: quiet }, { maxBytes: 1 << 20 });
    expect(await second.flush()).toBe(true);
    expect(r.appends).toEqual([1400]);
    // A journal behind the server (a crash before the offset was written): the bytes it has are ignored.
    await appendFile(r.dir.consolePath, lines(150, 10));
    r.journal.recordLiveLog(KEY.pk, { sent: 2000, maxBytes: 1 << 20 });
    r.appends.length = 0;
    const third = new LiveLogStream(KEY.pk, r.dir.consolePath, { api: r.api, journal: r.journal, log: quiet }, { maxBytes: 1 << 20 });
    expect(await third.flush()).toBe(true);
    expect(r.appends).toEqual([2000]);
    // A journal ahead of the server (the server lost bytes): the gap answer says where to resend from.
    await appendFile(r.dir.consolePath, lines(160, 10));
    r.journal.recordLiveLog(KEY.pk, { sent: 2300, maxBytes: 1 << 20 });
    r.appends.length = 0;
    const fourth = new LiveLogStream(KEY.pk, r.dir.consolePath, { api: r.api, journal: r.journal, log: quiet }, { maxBytes: 1 << 20 });
    expect(await fourth.flush()).toBe(true);
    expect(r.appends).toEqual([2300, 2240]);
    expect((await r.stored()).equals(await readFile(r.dir.consolePath))).toBe(true);
  });

  it('skips ahead when far behind, and what the server kept is still the log output', async () => {
    const r = await rig();
    const max = 64 * 1024;
    await writeFile(r.dir.consolePath, lines(0, 15_000)); // 210,000 bytes
    const stream = new LiveLogStream(KEY.pk, r.dir.consolePath, { api: r.api, journal: r.journal, log: quiet }, { maxBytes: max, maxRequestBytes: 16 * 1024 });
    expect(await stream.flush()).toBe(true);
    // The head in two appends, then a skip to the start of the cell before the last one.
    const lastCell = Math.floor((210_000 - 1 - 32_768) / 16_384);
    expect(r.appends.slice(0, 3)).toEqual([0, 16_384, 32_768 + (lastCell - 1) * 16_384]);
    const log = await writeJobLog(r.dir, max);
    expect((await r.stored()).equals(await readFile(log.path))).toBe(true);
  });
});
