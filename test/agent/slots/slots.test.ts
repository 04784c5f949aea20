import { describe, expect, it } from 'vitest';
import { cudaVisibleDevices, NO_NODE_INDEX, planSlots, Slots } from '../../../src/agent/slots/slots.js';

describe('planSlots()', () => {
  it('gives one slot per GPU, registered under the GPU index', () => {
    expect(planSlots(0, [0, 1, 3], 0)).toEqual([
      { index: 0, gpu: 0, nodeIndex: 0 },
      { index: 1, gpu: 1, nodeIndex: 1 },
      { index: 2, gpu: 3, nodeIndex: 3 },
    ]);
  });

  it('gives one CPU slot without GPUs, at the configured node index', () => {
    expect(planSlots(0, [], 5)).toEqual([{ index: 0, gpu: null, nodeIndex: 5 }]);
  });

  it('counts node indices up from the base for several CPU slots', () => {
    expect(planSlots(3, [], 0).map((s) => s.nodeIndex)).toEqual([0, 1, 2]);
  });

  it('shares GPUs round-robin when more slots than GPUs are configured', () => {
    const specs = planSlots(3, [0, 1], 10);
    expect(specs.map((s) => s.gpu)).toEqual([0, 1, 0]);
    expect(new Set(specs.map((s) => s.nodeIndex)).size).toBe(3);
  });
});

describe('cudaVisibleDevices()', () => {
  it('is the GPU index on a GPU slot and empty on a CPU slot', () => {
    expect(cudaVisibleDevices({ index: 0, gpu: 2, nodeIndex: 2 })).toBe('2');
    expect(cudaVisibleDevices({ index: 0, gpu: null, nodeIndex: 0 })).toBe('');
  });
});

describe('Slots', () => {
  it('hands out each slot once until it is released', () => {
    const slots = new Slots(planSlots(2, [], 0));
    const a = slots.tryAcquire();
    const b = slots.tryAcquire();
    expect(a?.index).toBe(0);
    expect(b?.index).toBe(1);
    expect(slots.tryAcquire()).toBeUndefined();
    expect(slots.free).toBe(0);
    slots.release(0);
    expect(slots.tryAcquire()?.index).toBe(0);
  });

  it('onFree() resolves at once when a slot is free, else on the next release', async () => {
    const slots = new Slots(planSlots(1, [], 0));
    await slots.onFree();
    slots.tryAcquire();
    let resolved = false;
    const waiting = slots.onFree().then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(resolved).toBe(false);
    slots.release(0);
    await waiting;
    expect(resolved).toBe(true);
  });

  it('onIdle() resolves when every slot is free', async () => {
    const slots = new Slots(planSlots(2, [], 0));
    await slots.onIdle();
    slots.tryAcquire();
    slots.tryAcquire();
    let idle = false;
    const waiting = slots.onIdle().then(() => (idle = true));
    slots.release(0);
    await new Promise((r) => setTimeout(r, 5));
    expect(idle).toBe(false);
    slots.release(1);
    await waiting;
    expect(idle).toBe(true);
  });

  it('take() claims a given slot for recovery and refuses a taken one', () => {
    const slots = new Slots(planSlots(2, [], 0));
    slots.take(1, 42);
    expect(slots.snapshot()[1]).toMatchObject({ index: 1, jobPk: 42 });
    expect(() => slots.take(1)).toThrow(/already taken/);
    expect(slots.tryAcquire()?.index).toBe(0);
  });

  it('retire() removes a free slot at once, and a taken one (a job, or the poll loop claiming through it) only when released', async () => {
    const slots = new Slots(planSlots(3, [], 0));
    const polling = slots.tryAcquire()!; // the poll loop holds it; no job yet
    slots.take(1, 42); // runs job 42
    const freeLeft = slots.left(2);
    expect(slots.retire(2)).toBe('gone');
    await freeLeft;
    await slots.left(2);
    expect(slots.retire(polling.index)).toBe('leaving');
    expect(slots.retire(1)).toBe('leaving');
    const left: number[] = [];
    void slots.left(polling.index).then(() => left.push(polling.index));
    void slots.left(1).then(() => left.push(1));
    await new Promise((r) => setTimeout(r, 5));
    expect(left).toEqual([]);
    expect(slots.isRetiring(polling.index)).toBe(true);
    // The claim came to nothing: the poll loop lets the slot go, and only now does it leave.
    slots.release(polling.index);
    await new Promise((r) => setTimeout(r, 5));
    expect(left).toEqual([polling.index]);
    slots.release(1);
    await slots.left(1);
    expect(left).toEqual([polling.index, 1]);
    expect(slots.size).toBe(0);
  });

  it('addBeyondPlan() gives a job a slot of its own that takes no new job and leaves when released', async () => {
    const slots = new Slots(planSlots(1, [0], 0));
    slots.take(0, 7);
    const extra = slots.addBeyondPlan(8);
    expect(extra.index).not.toBe(0);
    // No GPU (the job is never spawned again in it) and no node of its own.
    expect(extra).toEqual({ index: extra.index, gpu: null, nodeIndex: NO_NODE_INDEX });
    expect(slots.snapshot()).toEqual([
      { index: 0, gpu: 0, nodeIndex: 0, jobPk: 7 },
      { index: extra.index, gpu: null, nodeIndex: NO_NODE_INDEX, jobPk: 8, retiring: true },
    ]);
    // Not in the plan: not counted, not re-registered, never offered to the poll loop.
    expect(slots.size).toBe(1);
    expect(slots.specs()).toEqual([{ index: 0, gpu: 0, nodeIndex: 0 }]);
    expect(slots.running).toBe(2);
    expect(slots.workingInPlan).toBe(1);
    slots.release(0);
    // The plan's slot is free though a job still runs beyond the plan: the agent is ready.
    expect(slots.workingInPlan).toBe(0);
    expect(slots.running).toBe(1);
    expect(slots.tryAcquire()?.index).toBe(0);
    expect(slots.tryAcquire()).toBeUndefined();
    const left = slots.left(extra.index);
    slots.release(extra.index);
    await left;
    expect(slots.snapshot().map((s) => s.index)).toEqual([0]);
    // Its index is never handed out again in this process.
    expect(slots.addBeyondPlan(9).index).toBeGreaterThan(extra.index);
  });

  it("a free slot whose node works another slot's job is not free: not offered, not awaited, woken when that job's slot is released", async () => {
    // Slot 0 of the plan registers the node that slot 1's job (beyond the plan) reports as.
    const slots = new Slots(planSlots(1, [], 0));
    const beyond = slots.addBeyondPlan(8);
    let jobOfNode: number | null = 8;
    slots.setNodeBusy((spec) => spec.index === 0 && jobOfNode !== null);
    expect(slots.free).toBe(0);
    expect(slots.tryAcquire()).toBeUndefined();
    expect(slots.workingInPlan).toBe(1);
    expect(slots.snapshot()).toEqual([
      { index: 0, gpu: null, nodeIndex: 0, jobPk: null, nodeBusy: true },
      { index: beyond.index, gpu: null, nodeIndex: NO_NODE_INDEX, jobPk: 8, retiring: true },
    ]);
    let woken = false;
    const free = slots.onFree().then(() => (woken = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(woken).toBe(false);
    // The job leaves (the jobs in flight forget it first), then its slot is released.
    jobOfNode = null;
    slots.release(beyond.index);
    await free;
    expect(slots.free).toBe(1);
    expect(slots.workingInPlan).toBe(0);
    expect(slots.tryAcquire()?.index).toBe(0);
  });

  it('releasing a free slot is harmless', () => {
    const slots = new Slots(planSlots(1, [], 0));
    slots.release(0);
    expect(slots.free).toBe(1);
  });
});
