/**
 * Two server processes on one data directory (replicas an agent fails over between) each hold a
 * live-log store over the same files. An agent that appends through one replica, then the other,
 * then the first again must find the log as it is on disk, not as the first replica last saw it.
 */
import { describe, expect, it } from 'vitest';
import { LiveLogStore } from '../../src/server/live-log/store.js';
import { tempDir } from '../helpers/temp-dir.js';

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
