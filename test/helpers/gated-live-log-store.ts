/**
 * For tests that stop a live-log follower at one step (its handshake's look-up of the log, its read
 * of a piece) while something else happens: a gate on the store's methods. A test file installs it
 * with `vi.mock` (hoisted, so the factory imports this module itself):
 *
 *   vi.mock('../../src/server/live-log/store.js', async (original) => (await import('../helpers/gated-live-log-store.js')).gatedLiveLogStore(await original()));
 *
 * This module imports nothing at run time, so that the mock it serves does not load what it mocks.
 */
import type * as LiveLogStoreModule from '../../src/server/live-log/store.js';

type GatedMethod = 'info' | 'readPiece';

const gates: Record<GatedMethod, { gate: Promise<void> | undefined; onGated: () => void }> = {
  info: { gate: undefined, onGated: () => {} },
  readPiece: { gate: undefined, onGated: () => {} },
};

async function pass(method: GatedMethod): Promise<void> {
  const { gate, onGated } = gates[method];
  if (!gate) return;
  gates[method].gate = undefined;
  onGated();
  await gate;
}

/** The store module whose `LiveLogStore` stops at a gated method (see {@link holdNext}). */
export function gatedLiveLogStore(real: typeof LiveLogStoreModule): typeof LiveLogStoreModule {
  class GatedLiveLogStore extends real.LiveLogStore {
    override async info(...args: Parameters<LiveLogStoreModule.LiveLogStore['info']>) {
      await pass('info');
      return super.info(...args);
    }

    override async readPiece(...args: Parameters<LiveLogStoreModule.LiveLogStore['readPiece']>) {
      await pass('readPiece');
      return super.readPiece(...args);
    }
  }
  return { ...real, LiveLogStore: GatedLiveLogStore };
}

/**
 * Stop the next call of `method` (by any store of this process): `gated` resolves once it waits, and
 * `release()` lets it go (call it at the test's end too: `onTestFinished(release)`).
 */
export function holdNext(method: GatedMethod): { gated: Promise<void>; release: () => void } {
  let release!: () => void;
  gates[method].gate = new Promise<void>((resolve) => (release = resolve));
  const gated = new Promise<void>((resolve) => (gates[method].onGated = resolve));
  return { gated, release };
}
