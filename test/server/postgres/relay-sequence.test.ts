/**
 * The numbering that lets the hub relay's receivers tell a missed notification from a repeated one
 * (`relay-sequence.ts`), and the sending side that numbers, retries and, when it gives a
 * notification up, tells the others to catch up (`relay-publisher.ts`). No database: the send is a
 * fake whose every call the test answers.
 */
import { describe, expect, it } from 'vitest';
import { RelayPublisher } from '../../../src/server/store/postgres/relay-publisher.js';
import { OriginSequences } from '../../../src/server/store/postgres/relay-sequence.js';

describe('the numbers of the other replicas’ notifications', () => {
  it('says whether each follows the last, repeats it, or leaves a gap', () => {
    const sequences = new OriginSequences();
    expect(sequences.heard('a', 7)).toBe('first');
    expect(sequences.heard('a', 8)).toBe('next');
    expect(sequences.heard('a', 8)).toBe('repeat');
    expect(sequences.heard('a', 5)).toBe('repeat');
    expect(sequences.heard('a', 10)).toBe('gap');
    expect(sequences.heard('a', 11)).toBe('next');
    // Another origin (another replica, or this one restarted) has numbers of its own.
    expect(sequences.heard('b', 1)).toBe('first');
    expect(sequences.heard('b', 2)).toBe('next');
  });

  it('starts afresh after its own listener was replaced, still dropping repeats', () => {
    const sequences = new OriginSequences();
    sequences.heard('a', 1);
    sequences.heard('a', 2);
    sequences.rebase();
    expect(sequences.heard('a', 2)).toBe('repeat');
    expect(sequences.heard('a', 9)).toBe('first');
    expect(sequences.heard('a', 11)).toBe('gap');
  });

  it('forgets the origin heard longest ago beyond its capacity', () => {
    const sequences = new OriginSequences(2);
    sequences.heard('a', 1);
    sequences.heard('b', 1);
    sequences.heard('a', 2);
    sequences.heard('c', 1);
    // b was heard longest ago: forgotten, so nothing to compare with.
    expect(sequences.heard('b', 5)).toBe('first');
    expect(sequences.heard('c', 3)).toBe('gap');
  });
});

interface Call {
  payload: string;
  resolve(): void;
  reject(err: Error): void;
}

/** A send that the test answers call by call. */
class FakeSend {
  readonly calls: Call[] = [];
  readonly #waiting = new Map<number, (call: Call) => void>();

  readonly send = (payload: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const call = { payload, resolve, reject };
      this.calls.push(call);
      this.#waiting.get(this.calls.length)?.(call);
    });

  /** The `n`th call (from 1), once it is made. */
  call(n: number): Promise<Call> {
    const made = this.calls[n - 1];
    if (made) return Promise.resolve(made);
    return new Promise((resolve) => this.#waiting.set(n, resolve));
  }
}

const lost = () => new Error('Connection terminated unexpectedly');

function publisherOn(fake: FakeSend): { publisher: RelayPublisher; errors: string[] } {
  const errors: string[] = [];
  const publisher = new RelayPublisher({
    send: fake.send,
    marker: (s) => `marker ${s}`,
    log: { warn: () => {}, info: () => {}, error: ((_fields: unknown, message: string) => void errors.push(message)) as never },
    retryDelaysMs: [0, 0],
    markerDelaysMs: [0, 0],
  });
  return { publisher, errors };
}

describe('the relay’s sending side', () => {
  it('sends one notification at a time, in order, numbered from 1', async () => {
    const fake = new FakeSend();
    const { publisher } = publisherOn(fake);
    for (const name of ['x', 'y', 'z']) publisher.publish((s) => `${name} ${s}`);
    (await fake.call(1)).resolve();
    (await fake.call(2)).resolve();
    // The third waits for the second to be answered, never overlaps it.
    expect(fake.calls.map((c) => c.payload)).toEqual(['x 1', 'y 2']);
    (await fake.call(3)).resolve();
    await publisher.close();
    expect(fake.calls.map((c) => c.payload)).toEqual(['x 1', 'y 2', 'z 3']);
  });

  it('tries a failed notification again with its number, and the next one follows it', async () => {
    const fake = new FakeSend();
    const { publisher, errors } = publisherOn(fake);
    publisher.publish((s) => `x ${s}`);
    publisher.publish((s) => `y ${s}`);
    (await fake.call(1)).reject(lost());
    (await fake.call(2)).resolve();
    (await fake.call(3)).resolve();
    await publisher.close();
    expect(fake.calls.map((c) => c.payload)).toEqual(['x 1', 'x 1', 'y 2']);
    expect(errors).toEqual([]);
  });

  it('gives a notification up after its tries and sends the marker with the next number, until it goes through', async () => {
    const fake = new FakeSend();
    const { publisher, errors } = publisherOn(fake);
    publisher.publish((s) => `x ${s}`);
    // Three tries (one and the two retries), all failing: x is given up.
    for (const n of [1, 2, 3]) (await fake.call(n)).reject(lost());
    // The marker, numbered after x: the others see the gap, and the marker says it anyway.
    const marker = await fake.call(4);
    expect(marker.payload).toBe('marker 2');
    expect(errors).toEqual(['could not relay a hub event to the other replicas; telling them to catch up from the database instead']);
    // Emitted while the marker waits: covered by the catch-up its next try starts, so dropped.
    publisher.publish((s) => `dropped ${s}`);
    marker.reject(lost());
    // Nothing else to say, yet the marker is tried again.
    const again = await fake.call(5);
    expect(again.payload).toBe('marker 2');
    // Emitted during the try that goes through: after the others may have read the database, so sent.
    publisher.publish((s) => `y ${s}`);
    again.resolve();
    (await fake.call(6)).resolve();
    await publisher.close();
    expect(fake.calls.map((c) => c.payload)).toEqual(['x 1', 'x 1', 'x 1', 'marker 2', 'marker 2', 'y 3']);
  });

  it('on close, sends what was queued, and stops trying the marker after one more try', async () => {
    const fake = new FakeSend();
    const { publisher } = publisherOn(fake);
    publisher.publish((s) => `x ${s}`);
    publisher.publish((s) => `y ${s}`);
    const closed = publisher.close();
    publisher.publish((s) => `after close ${s}`);
    (await fake.call(1)).resolve();
    // Closed: y gets one try, then the marker one.
    (await fake.call(2)).reject(lost());
    (await fake.call(3)).reject(lost());
    await closed;
    expect(fake.calls.map((c) => c.payload)).toEqual(['x 1', 'y 2', 'marker 3']);
  });
});
