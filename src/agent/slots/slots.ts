/**
 * Job slots: a tiny semaphore with one job per slot.
 *
 * The reference server lets a node work one job at a time (`start` answers 406 while the node has a
 * `current_job`), so every slot is also its own node registration: slot `i` registers as
 * `(ip, nodeIndex + i)` on a CPU node, or `(ip, gpu)` on a GPU node, and its jobs see only that GPU
 * through `CUDA_VISIBLE_DEVICES`. The poll loop asks for work only while a slot is free
 * ({@link Slots.onFree}); nothing is ever prefetched.
 *
 * A slot that is not taken may still have to wait: its node may work a job of another slot (a slot
 * beyond the plan, whose job reports as the node a slot planned again registers;
 * {@link Slots.setNodeBusy}). It is not free until that job has left.
 */

export interface SlotSpec {
  /** 0-based slot number, stable for the process. */
  readonly index: number;
  /** The GPU index this slot owns, or null on a CPU slot. */
  readonly gpu: number | null;
  /** The node identity index (the reference's `gpu_id`) this slot registers with. */
  readonly nodeIndex: number;
}

/** The node identity index of a slot beyond the plan ({@link Slots.addBeyondPlan}), which registers no node. */
export const NO_NODE_INDEX = -1;

export interface Slot extends SlotSpec {
  /** The job in this slot, or null when free. */
  readonly jobPk: number | null;
}

export interface SlotSnapshot {
  index: number;
  gpu: number | null;
  nodeIndex: number;
  jobPk: number | null;
  /** Taken out of the plan (fewer slots configured, a GPU gone): takes no new job, leaves when free. */
  retiring?: true;
  /** Not taken, but its node works a job of another slot: it takes no job until that job has left. */
  nodeBusy?: true;
}

/** The identity of a slot across plans: its GPU and its node identity index. */
export function slotKey(spec: Pick<SlotSpec, 'gpu' | 'nodeIndex'>): string {
  return `${spec.gpu ?? 'cpu'}:${spec.nodeIndex}`;
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

/** A slot as `Slots` keeps it. */
interface SlotEntry {
  spec: SlotSpec;
  jobPk: number | null;
  taken: boolean;
  retiring: boolean;
}

export class Slots {
  #slots: SlotEntry[];
  #freeWaiters: (() => void)[] = [];
  #lastIndex = -1;
  #idleWaiters: (() => void)[] = [];
  /** Per retiring slot, who waits for it to leave the plan. */
  readonly #leftWaiters = new Map<number, (() => void)[]>();
  /** Whether a slot's node works a job of another slot ({@link setNodeBusy}). */
  #nodeBusy: (spec: SlotSpec) => boolean = () => false;

  constructor(specs: readonly SlotSpec[]) {
    if (specs.length === 0) throw new TypeError('Slots: at least one slot is needed, got 0');
    this.#slots = specs.map((spec) => ({ spec, jobPk: null, taken: false, retiring: false }));
  }

  /** Slots in the plan (a retiring slot that still runs its job is not counted). */
  get size(): number {
    return this.#slots.filter((s) => !s.retiring).length;
  }

  get busy(): number {
    return this.#slots.filter((s) => s.taken).length;
  }

  /** Slots of the plan that may take a job now. */
  get free(): number {
    return this.#slots.filter((s) => this.#mayTake(s)).length;
  }

  /** Slots that run a job (a slot the poll loop holds while it polls is busy but runs none). */
  get running(): number {
    return this.#slots.filter((s) => s.taken && s.jobPk !== null).length;
  }

  /**
   * Slots of the plan that run a job, or whose node runs one for another slot: what readiness compares
   * with {@link size}. (A slot the poll loop holds while it polls is not counted.)
   */
  get workingInPlan(): number {
    return this.#slots.filter((s) => !s.retiring && (s.taken ? s.jobPk !== null : this.#nodeBusy(s.spec))).length;
  }

  /** Slots of the plan, not taken, whose node runs a job of another slot ({@link setNodeBusy}). */
  get waitingForNodeInPlan(): number {
    return this.#slots.filter((s) => !s.retiring && !s.taken && this.#nodeBusy(s.spec)).length;
  }

  /**
   * How to tell that a slot's node works a job of another slot. A job beyond the plan reports as the
   * node it was acquired as; when the plan grows again, a new slot may register that very node (the
   * same identity). The server starts no second job on a node that works one, so such a slot must not
   * poll or acquire: every job it took would be given back. It is not free until that job has left:
   * the job's slot is released then, which wakes {@link onFree} (so `check` must say false by then).
   */
  setNodeBusy(check: (spec: SlotSpec) => boolean): void {
    this.#nodeBusy = check;
  }

  /** The slots of the plan (not the retiring ones). */
  specs(): SlotSpec[] {
    return this.#slots.filter((s) => !s.retiring).map((s) => s.spec);
  }

  /** An index no slot has had in this process, for {@link add}. */
  nextIndex(): number {
    this.#lastIndex = Math.max(this.#lastIndex, ...this.#slots.map((s) => s.spec.index)) + 1;
    return this.#lastIndex;
  }

  /**
   * A new slot, free at once; its index comes from {@link nextIndex}. The caller registers the slot's
   * node first, so that no job is taken on a slot without a node.
   */
  add(spec: SlotSpec): void {
    if (this.#slots.some((s) => s.spec.index === spec.index)) throw new Error(`Slots: slot ${spec.index} exists already`);
    this.#slots.push({ spec, jobPk: null, taken: false, retiring: false });
    this.#wakeFree();
  }

  /**
   * A slot beyond the plan, taken by `jobPk` at once and already retiring: it takes no new job and
   * leaves when the job ends, as a slot the plan loses while the agent runs. Recovery gives one to a
   * job it continues when the plan has no free slot left for it (the agent restarted with fewer
   * slots): that job's child, its outputs or its finish carry on rather than being thrown away.
   * It owns no GPU (a job continued by recovery is never spawned again) and registers no node: its
   * job reports as the node it was acquired as, so its node identity index is {@link NO_NODE_INDEX}.
   */
  addBeyondPlan(jobPk: number): SlotSpec {
    const spec: SlotSpec = { index: this.nextIndex(), gpu: null, nodeIndex: NO_NODE_INDEX };
    this.#slots.push({ spec, jobPk, taken: true, retiring: true });
    return spec;
  }

  /**
   * Take a slot out of the plan: `gone` at once when free; else `leaving`, when whoever took it (a job,
   * or the poll loop, which may be claiming a job through it right now) releases it ({@link left}).
   */
  retire(index: number): 'gone' | 'leaving' {
    const slot = this.#slots.find((s) => s.spec.index === index);
    if (!slot) return 'gone';
    if (!slot.taken) {
      this.#remove(slot);
      return 'gone';
    }
    slot.retiring = true;
    return 'leaving';
  }

  /** Resolves once slot `index` is out of the plan (at once when it is not in it). */
  left(index: number): Promise<void> {
    if (!this.#slots.some((s) => s.spec.index === index)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#leftWaiters.get(index) ?? [];
      waiters.push(resolve);
      this.#leftWaiters.set(index, waiters);
    });
  }

  /** Whether the slot left the plan while taken (it must take no new job). */
  isRetiring(index: number): boolean {
    return this.#slots.find((s) => s.spec.index === index)?.retiring ?? false;
  }

  /** Take a free slot, or undefined when all are busy. The caller must {@link release} it. */
  tryAcquire(): SlotSpec | undefined {
    const slot = this.#slots.find((s) => this.#mayTake(s));
    if (!slot) return undefined;
    slot.taken = true;
    slot.jobPk = null;
    return slot.spec;
  }

  /** Take one particular slot (recovery re-attaches a job to the slot it ran in). */
  take(index: number, jobPk: number | null = null): SlotSpec {
    const slot = this.#slots.find((s) => s.spec.index === index);
    if (!slot) throw new RangeError(`Slots: no slot ${index} (there are ${this.size})`);
    if (slot.taken) throw new Error(`Slots: slot ${index} is already taken (job ${slot.jobPk})`);
    slot.taken = true;
    slot.jobPk = jobPk;
    return slot.spec;
  }

  /** Record which job a taken slot runs (for the status snapshot). */
  assign(index: number, jobPk: number | null): void {
    const slot = this.#slots.find((s) => s.spec.index === index);
    if (slot?.taken) slot.jobPk = jobPk;
  }

  release(index: number): void {
    const slot = this.#slots.find((s) => s.spec.index === index);
    if (!slot || !slot.taken) return;
    slot.taken = false;
    slot.jobPk = null;
    if (slot.retiring) this.#remove(slot);
    this.#wakeFree();
    if (this.busy === 0) {
      const idleWaiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of idleWaiters) resolve();
    }
  }

  /** Take the slot out of the plan, and tell whoever waits for it to leave ({@link left}). */
  #remove(slot: SlotEntry): void {
    this.#slots = this.#slots.filter((s) => s !== slot);
    const waiters = this.#leftWaiters.get(slot.spec.index) ?? [];
    this.#leftWaiters.delete(slot.spec.index);
    for (const resolve of waiters) resolve();
  }

  /** In the plan, not taken, and its node works no job of another slot. */
  #mayTake(slot: SlotEntry): boolean {
    return !slot.taken && !slot.retiring && !this.#nodeBusy(slot.spec);
  }

  #wakeFree(): void {
    if (this.free === 0) return;
    const freeWaiters = this.#freeWaiters;
    this.#freeWaiters = [];
    for (const resolve of freeWaiters) resolve();
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
    return this.#slots.map((s) => ({
      ...s.spec,
      jobPk: s.jobPk,
      ...(s.retiring ? { retiring: true as const } : {}),
      ...(!s.taken && !s.retiring && this.#nodeBusy(s.spec) ? { nodeBusy: true as const } : {}),
    }));
  }
}
