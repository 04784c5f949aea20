/**
 * The node of each slot: its client (sending the node's pk as `Node-Id`), its registration, and its
 * re-registration after a `400 Bad Node-Id` (the node record vanished on the server). Each slot's
 * client is a sibling of the agent's logged-in client ({@link UfdlClient.forNode}): one login, one
 * token refresh, one connection pool and one capabilities answer for all slots. Every client call
 * is observed: a `bad-node-id` answer triggers one re-registration of that slot. (Whether the server
 * answers at all is learnt from every attempt of every call, see `UfdlClient.onReachability`.)
 */
import { ClientError } from '../../client/errors.js';
import type { UfdlClient } from '../../client/api.js';
import type { HardwareJson, NodeJson } from '../../protocol/wire.js';
import type { NodeHardwareFacts } from '../hardware/detect.js';
import { nodeChanged, nodeSpecFor, registerNode, type Registered } from './registration.js';
import type { SlotSpec } from './slots.js';

/**
 * The same client, with every promise-returning method observed for a `bad-node-id` answer. Methods
 * run on the client itself (its private fields need the real `this`).
 */
export function observeClient<T extends object>(client: T, onBadNodeId: () => void): T {
  return new Proxy(client, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((err: unknown) => {
          if (err instanceof ClientError && err.kind === 'bad-node-id') onBadNodeId();
          throw err;
        });
      };
    },
  });
}

export interface SlotNode {
  readonly spec: SlotSpec;
  /** The observed client acting as this slot's node. */
  readonly api: UfdlClient;
  node: NodeJson;
}

export interface SlotNodesOptions {
  /** The agent's logged-in client; each node acts through a sibling of it (`forNode`). */
  root: UfdlClient;
  ip: string;
  /** What registration reports; {@link SlotNodes.updateHardware} replaces it. */
  hardware: NodeHardwareFacts;
  generations: readonly HardwareJson[];
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /** After each (re-)registration, e.g. to journal the identity. */
  onRegistered?: (slot: SlotSpec, registered: Registered) => void;
}

export class SlotNodes {
  readonly #o: SlotNodesOptions;
  readonly #nodes = new Map<number, SlotNode>();
  readonly #raw = new Map<number, UfdlClient>();
  readonly #reregistering = new Map<number, Promise<void>>();
  #closed = false;

  constructor(options: SlotNodesOptions) {
    this.#o = options;
  }

  get all(): SlotNode[] {
    return [...this.#nodes.values()];
  }

  get(slotIndex: number): SlotNode | undefined {
    return this.#nodes.get(slotIndex);
  }

  /** The hardware the nodes were last registered or updated with. */
  get hardware(): NodeHardwareFacts {
    return this.#o.hardware;
  }

  get generations(): readonly HardwareJson[] {
    return this.#o.generations;
  }

  /**
   * New hardware facts (GPUs, memory, driver): every node whose record now differs is PATCHed (the
   * reference's `PATCH /v1/nodes/{pk}`, allowed to the node itself). Returns the pks updated.
   */
  async updateHardware(hardware: NodeHardwareFacts, generations: readonly HardwareJson[]): Promise<number[]> {
    this.#o.hardware = hardware;
    this.#o.generations = generations;
    const updated: number[] = [];
    for (const entry of this.#nodes.values()) {
      const spec = nodeSpecFor(this.#o.ip, entry.spec.nodeIndex, entry.spec.gpu, hardware, generations);
      if (!nodeChanged(entry.node, spec)) continue;
      const before = { cpu_mem: entry.node.cpu_mem, gpu_mem: entry.node.gpu_mem, driver_version: entry.node.driver_version, hardware_generation: entry.node.hardware_generation };
      entry.node = await entry.api.patchNode(entry.node.pk, spec);
      updated.push(entry.node.pk);
      this.#o.log.info(
        { slot: entry.spec.index, node: entry.node.pk, before, after: { cpu_mem: spec.cpu_mem, gpu_mem: spec.gpu_mem, driver_version: spec.driver_version, hardware_generation: spec.hardware_generation } },
        'hardware changed: node record updated',
      );
    }
    return updated;
  }

  /** Forget a slot's node (its slot left the plan); the record stays on the server, as nodes do. */
  remove(slotIndex: number): void {
    this.#raw.get(slotIndex)?.close();
    this.#raw.delete(slotIndex);
    this.#nodes.delete(slotIndex);
  }

  /** Register every slot's node (list → PATCH if changed, or create). */
  async registerAll(specs: readonly SlotSpec[]): Promise<SlotNode[]> {
    for (const spec of specs) {
      const raw = this.#o.root.forNode(null);
      this.#raw.set(spec.index, raw);
      const api = observeClient(raw, () => void this.reregister(spec.index));
      const registered = await this.#register(raw, spec);
      this.#nodes.set(spec.index, { spec, api, node: registered.node });
    }
    return this.all;
  }

  /** Register a slot again (single-flight); its client then sends the new pk. */
  reregister(slotIndex: number): Promise<void> {
    const running = this.#reregistering.get(slotIndex);
    if (running) return running;
    const entry = this.#nodes.get(slotIndex);
    const raw = this.#raw.get(slotIndex);
    if (!entry || !raw || this.#closed) return Promise.resolve();
    this.#o.log.warn({ slot: slotIndex, node: entry.node.pk }, "the server does not know this node's pk (400 Bad Node-Id): registering again");
    const task = this.#register(raw, entry.spec)
      .then((registered) => {
        entry.node = registered.node;
      })
      .catch((err: unknown) => this.#o.log.error({ slot: slotIndex, err: String(err) }, 'registering again failed'))
      .finally(() => this.#reregistering.delete(slotIndex));
    this.#reregistering.set(slotIndex, task);
    return task;
  }

  /** A client acting as some other node pk (recovery of entries of an earlier registration). */
  clientFor(nodePk: number): UfdlClient {
    const raw = this.#o.root.forNode(nodePk);
    this.#raw.set(-nodePk, raw);
    return raw;
  }

  /** Close the slots' clients (their own watchers; the root client closes the rest). */
  close(): void {
    this.#closed = true;
    for (const client of this.#raw.values()) client.close();
  }

  async #register(raw: UfdlClient, spec: SlotSpec): Promise<Registered> {
    const body = nodeSpecFor(this.#o.ip, spec.nodeIndex, spec.gpu, this.#o.hardware, this.#o.generations);
    // Registration's own clients (siblings sharing the login), closed once it is done.
    const clients: UfdlClient[] = [];
    const clientAs = (pk: number | null): UfdlClient => {
      const client = this.#o.root.forNode(pk);
      clients.push(client);
      return client;
    };
    let registered: Registered;
    try {
      registered = await registerNode(clientAs, body);
    } finally {
      for (const client of clients) client.close();
    }
    raw.setNodePk(registered.node.pk);
    this.#o.log.info(
      { slot: spec.index, node: registered.node.pk, ip: body.ip, index: body.index, action: registered.action, currentJob: registered.node.current_job },
      `node ${registered.action === 'created' ? 'registered' : registered.action === 'patched' ? 'found and updated' : 'found'}`,
    );
    this.#o.onRegistered?.(spec, registered);
    return registered;
  }
}
