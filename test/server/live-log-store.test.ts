/**
 * The live-log store caches each log's state (its length, its cells). Readers (a follower, `GET
 * .../log`) and the appender both load that state from disk when it is not cached; a reader's load
 * that overlaps an append must never leave behind, in the cache, a state older than the append —
 * else followers see a log shorter than it is for good (a short job's follower printed nothing).
 * And a follower sends its `start` frame before any byte, whatever was appended meanwhile.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { LogFollower } from '../../src/server/live-log/follow.js';
import { LiveLogStore } from '../../src/server/live-log/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

const MAX = 1 << 20;
const START = '2030-01-01T00:00:00.000Z';

async function store(): Promise<LiveLogStore> {
  const s = new LiveLogStore(await tempDir('ufdl-live-store-'), { maxBytesLimit: MAX });
  await s.init(() => true);
  return s;
}

/** A socket that takes every frame at once: what the follower sends, in order, and how it closed it. */
function takingSocket() {
  const sent: (string | Buffer)[] = [];
  const closes: [number, string][] = [];
  const socket = Object.assign(new EventEmitter(), {
    OPEN: 1,
    readyState: 1,
    send(data: string | Buffer, _options: unknown, done: (err?: Error) => void) {
      sent.push(data);
      done();
    },
    ping() {},
    terminate() {},
    close(code: number, reason: string) {
      closes.push([code, reason]);
    },
  });
  return { socket, sent, closes };
}

/** Let `n` turns of the event loop pass (file-system callbacks complete in between). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('the live-log store under readers racing an append', () => {
  it('answers the appended length once the append has resolved, whenever the reader began', async () => {
    const s = await store();
    const line = Buffer.from('a line of the log\n');
    // Each job: an append, and a reader that starts some turns later, so that across the jobs the
    // reader's load from disk overlaps every step of the append (directory, cap file, bytes).
    const jobs = Array.from({ length: 120 }, (_, i) => i + 1);
    await Promise.all(
      jobs.map(async (pk) => {
        const key = { pk, startTime: START };
        const appended = s.append(key, 0, line, MAX);
        await turns(pk % 24);
        const [length] = await Promise.all([appended, s.info(key)]);
        expect(length).toBe(line.length);
      }),
    );
    for (const pk of jobs) {
      const key = { pk, startTime: START };
      expect((await s.info(key)).length, `job ${pk}`).toBe(line.length);
      expect((await s.piece(key, 0, 1 << 16)).length, `job ${pk}`).toBe(line.length);
    }
  });

  it('does the same for a log that already had bytes and was not cached', async () => {
    const s = await store();
    const first = Buffer.from('first\n');
    const second = Buffer.from('second\n');
    const jobs = Array.from({ length: 120 }, (_, i) => i + 1);
    for (const pk of jobs) {
      await s.append({ pk, startTime: START }, 0, first, MAX);
      // As after another replica's append: the next read loads from disk.
      s.appendedElsewhere(pk);
    }
    await Promise.all(
      jobs.map(async (pk) => {
        const key = { pk, startTime: START };
        const appended = s.append(key, first.length, second, MAX);
        await turns(pk % 24);
        await Promise.all([appended, s.piece(key, 0, 1 << 16)]);
      }),
    );
    for (const pk of jobs) expect((await s.info({ pk, startTime: START })).length, `job ${pk}`).toBe(first.length + second.length);
  });
});

describe('a follower told of an append before it has sent its start', () => {
  it('sends the start frame first, then the bytes from its offset, each once', async () => {
    const s = await store();
    const key = { pk: 1, startTime: START };
    await s.append(key, 0, Buffer.from('one\n'), MAX);
    const { socket, sent } = takingSocket();
    const follower = new LogFollower(socket as unknown as WebSocket, s, { current: () => ({ key, ended: false }), onDisk: async () => {} }, { key, offset: 0 });
    // As the route does: the follower is registered, then the log looked up; an append lands between.
    const info = await s.info(key);
    await s.append(key, 4, Buffer.from('two\n'), MAX);
    follower.poke();
    // Time for a pump to read the file and send (the file-system calls complete in between).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sent).toEqual([]);
    await follower.start({ length: info.length, complete: false, maxBytes: info.maxBytes });
    await until(() => Buffer.concat(sent.filter((f): f is Buffer => Buffer.isBuffer(f))).toString() === 'one\ntwo\n', 5_000, 'the bytes');
    expect(JSON.parse(String(sent[0]))).toMatchObject({ type: 'start', offset: 0 });
    follower.close();
  });
});

describe('a follower whose socket fails the start frame (the peer reset it mid-write)', () => {
  it('terminates that socket and does not reject: an unhandled rejection would end the server', async () => {
    const s = await store();
    const key = { pk: 1, startTime: START };
    await s.append(key, 0, Buffer.from('one\n'), MAX);
    let terminated = 0;
    const socket = Object.assign(new EventEmitter(), {
      OPEN: 1,
      readyState: 1,
      send(_data: string | Buffer, _options: unknown, done: (err?: Error) => void) {
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
      ping() {},
      terminate() {
        terminated++;
      },
      close() {},
    });
    const follower = new LogFollower(socket as unknown as WebSocket, s, { current: () => ({ key, ended: false }), onDisk: async () => {} }, { key, offset: 0 });
    const info = await s.info(key);
    await expect(follower.start({ length: info.length, complete: false, maxBytes: info.maxBytes })).resolves.toBeUndefined();
    expect(terminated).toBe(1);
    expect(follower.closed).toBe(true);
  });
});

describe('a follower whose job is hard-deleted while it follows', () => {
  it('says the job is gone only once the delete is on disk (group commit)', async () => {
    const s = await store();
    const key = { pk: 1, startTime: START };
    await s.append(key, 0, Buffer.from('one\n'), MAX);
    const { socket, sent, closes } = takingSocket();
    // The job row as the server's connection reads it: gone once deleted, though that delete's
    // commit still waits for its sync, which the test completes by hand.
    let deleted = false;
    let completeSync: (() => void) | undefined;
    const onDisk = () => (deleted ? new Promise<void>((resolve) => (completeSync = resolve)) : Promise.resolve());
    const follower = new LogFollower(socket as unknown as WebSocket, s, { current: () => (deleted ? undefined : { key, ended: false }), onDisk }, { key, offset: 0 });
    const info = await s.info(key);
    await follower.start({ length: info.length, complete: false, maxBytes: info.maxBytes });
    await until(() => sent.some((frame) => Buffer.isBuffer(frame) && frame.toString() === 'one\n'), 5_000, 'the bytes');

    deleted = true;
    follower.poke();
    await until(() => completeSync !== undefined, 5_000, 'the follower to wait for the sync');
    // A close now would tell of a delete a power cut could undo.
    await turns(20);
    expect(closes).toEqual([]);

    completeSync!();
    await until(() => closes.length > 0, 5_000, 'the close');
    expect(closes).toEqual([[1008, 'job not found']]);
    follower.close();
  });
});

describe('appends racing the removal of a hard-deleted job\'s log', () => {
  async function storeOf(jobs: Set<number>): Promise<{ s: LiveLogStore; root: string }> {
    const root = await tempDir('ufdl-live-store-');
    const s = new LiveLogStore(root, { maxBytesLimit: MAX });
    await s.init((pk) => jobs.has(pk));
    return { s, root };
  }

  it('an append under way when the delete comes finishes, and then the log is removed', async () => {
    const jobs = new Set([1]);
    const { s, root } = await storeOf(jobs);
    const key = { pk: 1, startTime: START };
    await s.append(key, 0, Buffer.from('start\n'), MAX);
    // An append that crosses many cells (each a file of its own), under way when the delete's event
    // comes: the row is gone, the removal is asked for at once.
    const appending = s.append(key, 6, Buffer.alloc(MAX, 'x'), MAX);
    await Promise.resolve();
    jobs.delete(1);
    const removing = s.remove(1);
    // Before, the removal ran beside it: it failed (ENOTEMPTY, a file made while it emptied the
    // directory) and left the deleted job's log on disk, or the append found its directory gone.
    await expect(appending).resolves.toBe(6 + MAX);
    await expect(removing).resolves.toBeUndefined();
    expect(existsSync(join(root, '1'))).toBe(false);
  });

  it('an append admitted before the delete that runs after it is told the job is gone, and makes no directory', async () => {
    const jobs = new Set([1]);
    const { s, root } = await storeOf(jobs);
    const key = { pk: 1, startTime: START };
    await s.append(key, 0, Buffer.from('start\n'), MAX);
    jobs.delete(1);
    await s.remove(1);
    await expect(s.append(key, 6, Buffer.from('late\n'), MAX)).rejects.toMatchObject({ code: 'UFDL_ERR_REQ_NOT_FOUND', message: 'Not found.' });
    expect(existsSync(join(root, '1'))).toBe(false);
  });
});
