/**
 * Job slots: a tiny semaphore with one job per slot (DESIGN §4 "Slots").
 *
 * The reference server lets a node work one job at a time (`start` answers 406 while the node has a
 * `current_job`), so every slot is also its own node registration: slot `i` registers as
 * `(ip, nodeIndex + i)` on a CPU node, or `(ip, gpu)` on a GPU node, and its jobs see only that GPU
 * through `CUDA_VISIBLE_DEVICES`. The poll loop asks for work only while a slot is free
 * ({@link Slots.onFree}); nothing is ever prefetched.
 */

export interface SlotSpec {
  /** 0-based slot number, stable for the process. */
  readonly index: number;
  /** The GPU index this slot owns, or null on a CPU slot. */
  readonly gpu: number | null;
  /** The node identity index (the reference's `gpu_id`) this slot registers with. */
  readonly nodeIndex: number;
}

export interface Slot extends SlotSpec {
  /** The job in this slot, or null when free. */
  readonly jobPk: number | null;
}

export interface SlotSnapshot {
  index: number;
  gpu: number | null;
  nodeIndex: number;
  jobPk: number | null;
}

/**
 * Lay out the slots: one per detected GPU when `configured` is 0, else `configured` slots (sharing the
 * GPUs round-robin when there are any), at least one.
 */
export function planSlots(configured: number, gpuIndices: readonly number[], baseNodeIndex: number): SlotSpec[] {
  const count = configured > 0 ? configured : Math.max(1, gpuIndices.length);
  const specs: SlotSpec[] = [];
  for (let i = 0; i < count; i++) {
    const gpu = gpuIndices.length > 0 ? gpuIndices[i % gpuIndices.length]! : null;
    // On GPU nodes the identity index is the GPU's (as the reference does); a second slot on the same
    // GPU, or a CPU slot, counts up from the configured base so identities never collide.
    const nodeIndex = gpu !== null && i < gpuIndices.length ? gpu : baseNodeIndex + i;
    specs.push({ index: i, gpu, nodeIndex });
  }
  return specs;
}

/** `CUDA_VISIBLE_DEVICES` for a job in this slot: its GPU, or empty on a CPU slot (no GPU visible). */
export function cudaVisibleDevices(slot: SlotSpec): string {
  return slot.gpu === null ? '' : String(slot.gpu);
}

export class Slots {
  readonly #slots: { spec: SlotSpec; jobPk: number | null; taken: boolean }[];
  #freeWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(specs: readonly SlotSpec[]) {
    if (specs.length === 0) throw new TypeError('Slots: at least one slot is needed, got 0');
    this.#slots = specs.map((spec) => ({ spec, jobPk: null, taken: false }));
  }

  get size(): number {
    return this.#slots.length;
  }

  get busy(): number {
    return this.#slots.filter((s) => s.taken).length;
  }

  get free(): number {
    return this.size - this.busy;
  }

  /** Slots that run a job (a slot the poll loop holds while it polls is busy but runs none). */
  get running(): number {
    return this.#slots.filter((s) => s.taken && s.jobPk !== null).length;
  }

  specs(): SlotSpec[] {
    return this.#slots.map((s) => s.spec);
  }

  /** Take a free slot, or undefined when all are busy. The caller must {@link release} it. */
  tryAcquire(): SlotSpec | undefined {
    const slot = this.#slots.find((s) => !s.taken);
    if (!slot) return undefined;
    slot.taken = true;
    slot.jobPk = null;
    return slot.spec;
  }

  /** Take one particular slot (recovery re-attaches a job to the slot it ran in). */
  take(index: number, jobPk: number | null = null): SlotSpec {
    const slot = this.#slots[index];
    if (!slot) throw new RangeError(`Slots: no slot ${index} (there are ${this.size})`);
    if (slot.taken) throw new Error(`Slots: slot ${index} is already taken (job ${slot.jobPk})`);
    slot.taken = true;
    slot.jobPk = jobPk;
    return slot.spec;
  }

  /** Record which job a taken slot runs (for the status snapshot). */
  assign(index: number, jobPk: number | null): void {
    const slot = this.#slots[index];
    if (slot?.taken) slot.jobPk = jobPk;
  }

  release(index: number): void {
    const slot = this.#slots[index];
    if (!slot || !slot.taken) return;
    slot.taken = false;
    slot.jobPk = null;
    const freeWaiters = this.#freeWaiters;
    this.#freeWaiters = [];
    for (const resolve of freeWaiters) resolve();
    if (this.busy === 0) {
      const idleWaiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of idleWaiters) resolve();
    }
  }

  /** Resolves when at least one slot is free; at once if one already is. */
  onFree(): Promise<void> {
    if (this.free > 0) return Promise.resolve();
    return new Promise((resolve) => this.#freeWaiters.push(resolve));
  }

  /** Resolves when every slot is free; at once if they already are. */
  onIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  snapshot(): SlotSnapshot[] {
    return this.#slots.map((s) => ({ ...s.spec, jobPk: s.jobPk }));
  }
}
