/**
 * Two server processes on one data directory (replicas an agent fails over between) each hold a
 * live-log store over the same files. An agent that appends through one replica, then the other,
 * then the first again must find the log as it is on disk, not as the first replica last saw it.
 */
import { describe, expect, it, vi } from 'vitest';
import { LiveLogStore } from '../../src/server/live-log/store.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * A gate on `stat`: while set, the next `stat` takes its answer from the disk at once and hands it
 * back only when the gate opens, as a thread-pool call that was slow to come back would. Off by default.
 */
const slowStat = vi.hoisted(() => ({ gate: undefined as Promise<void> | undefined, taken: () => {} }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const stat = (async (...args: Parameters<typeof fs.stat>) => {
    const gate = slowStat.gate;
    slowStat.gate = undefined;
    const answer = await fs.stat(...args);
    if (gate) slowStat.taken();
    if (gate) await gate;
    return answer;
  }) as typeof fs.stat;
  return { ...fs, default: { ...fs, stat }, stat };
});

const MAX = 1 << 20;

async function twoReplicas(): Promise<[LiveLogStore, LiveLogStore]> {
  const root = await tempDir('ufdl-live-replicas-');
  const stores = [new LiveLogStore(root, { maxBytesLimit: MAX }), new LiveLogStore(root, { maxBytesLimit: MAX })] as const;
  for (const store of stores) await store.init(() => true);
  return [stores[0], stores[1]];
}

async function readAll(store: LiveLogStore, key: { pk: number; startTime: string }): Promise<string> {
  let text = '';
  for (let offset = 0; ; ) {
    const piece = await store.piece(key, offset, 1 << 16);
    if (piece.length === 0) return text;
    text += (await store.readPiece(piece)).toString();
    offset = piece.offset + piece.length;
  }
}

describe('a live log appended through two replicas in turn', () => {
  it('continues where the other replica left it, with every byte once', async () => {
    const [a, b] = await twoReplicas();
    const key = { pk: 7, startTime: '2030-01-01T00:00:00.000Z' };
    expect(await a.append(key, 0, Buffer.from('one\n'), MAX)).toBe(4);
    expect(await b.append(key, 4, Buffer.from('two\n'), MAX)).toBe(8);
    // Back on the first replica: its last sight of the log was 4 bytes long.
    expect(await a.append(key, 8, Buffer.from('three\n'), MAX)).toBe(14);
    // A resend of bytes the log already has is still recognised as such.
    expect(await b.append(key, 4, Buffer.from('two\n'), MAX)).toBe(14);
    for (const store of [a, b]) expect(await readAll(store, key)).toBe('one\ntwo\nthree\n');
  });
});

describe('a replica whose read of a live log overlaps an append through another', () => {
  it('does not keep the length it read once told of the append', async () => {
    const [a, b] = await twoReplicas();
    const key = { pk: 9, startTime: '2030-01-01T00:00:00.000Z' };
    await a.append(key, 0, Buffer.from('one\n'), MAX);
    // The hub told b of that append: b's next read loads the log from disk, and is slow to come back.
    b.appendedElsewhere(key.pk);
    let open!: () => void;
    slowStat.gate = new Promise<void>((resolve) => (open = resolve));
    const taken = new Promise<void>((resolve) => (slowStat.taken = resolve));
    const slowRead = b.info(key);
    await taken;
    // Meanwhile the agent appends through a, and the hub tells b of it.
    expect(await a.append(key, 4, Buffer.from('two\n'), MAX)).toBe(8);
    b.appendedElsewhere(key.pk);
    open();
    // The slow read was made before the append: its answer is old, and must not stay.
    expect((await slowRead).length).toBe(4);
    expect((await b.info(key)).length).toBe(8);
    expect(await readAll(b, key)).toBe('one\ntwo\n');
  });
});
