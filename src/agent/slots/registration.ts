/**
 * Node registration, as the reference worker does it: the identity is `(ip, index)`; the agent looks
 * the node up by that identity, PATCHes it when its hardware changed, or creates it. Every slot is a
 * node of its own (see `slots.ts`). The pk is kept in the journal; a `400 Bad Node-Id` anywhere makes
 * the agent register again (the reference launcher loops on errors forever instead).
 */
import { nodeIdentityFilter } from '../../protocol/filter.js';
import type { HardwareJson, NodeJson, NodeSpec } from '../../protocol/wire.js';
import { isClientError } from '../../client/errors.js';
import { failPoint } from '../fail-points.js';
import type { NodeHardwareFacts } from '../hardware/detect.js';
import { hardwareGenerationFor } from '../hardware/generation.js';

/** The client calls registration makes (a `UfdlClient` fits). */
export interface RegistrationApi {
  setNodePk(pk: number | null): void;
  listNodes(filter: ReturnType<typeof nodeIdentityFilter>): Promise<NodeJson[]>;
  createNode(spec: NodeSpec): Promise<NodeJson>;
  patchNode(pk: number, spec: Partial<NodeSpec>): Promise<NodeJson>;
}

/** The body of create/PATCH for one slot's node. */
export function nodeSpecFor(
  ip: string,
  nodeIndex: number,
  gpu: number | null,
  hardware: NodeHardwareFacts,
  generations: readonly HardwareJson[],
): NodeSpec {
  const card = gpu === null ? undefined : hardware.gpus.find((g) => g.index === gpu);
  return {
    ip,
    index: nodeIndex,
    cpu_mem: Math.round(hardware.cpuMemBytes),
    driver_version: card ? hardware.driverVersion : null,
    hardware_generation: card ? (hardwareGenerationFor(card.computeCapability, generations)?.pk ?? null) : null,
    gpu_mem: card?.memoryBytes ?? null,
  };
}

/** Whether the server's node differs from what we would report (then it is PATCHed). */
export function nodeChanged(node: NodeJson, spec: NodeSpec): boolean {
  return (
    node.cpu_mem !== spec.cpu_mem ||
    (node.driver_version ?? null) !== (spec.driver_version ?? null) ||
    (node.hardware_generation ?? null) !== (spec.hardware_generation ?? null) ||
    (node.gpu_mem ?? null) !== (spec.gpu_mem ?? null)
  );
}

export interface Registered {
  node: NodeJson;
  action: 'found' | 'patched' | 'created';
}

/**
 * Register one node: list by identity → PATCH if found and changed, or create. A create that loses a
 * race with another registration of the same identity (400 duplicate) looks it up again.
 * On return the client sends the node's pk as `Node-Id`.
 */
export async function registerNode(api: RegistrationApi, spec: NodeSpec): Promise<Registered> {
  api.setNodePk(null);
  for (let attempt = 0; attempt < 3; attempt++) {
    const [existing] = await api.listNodes(nodeIdentityFilter(spec.ip, spec.index));
    if (existing) {
      // PATCH requires "node is self", so the Node-Id is set first.
      api.setNodePk(existing.pk);
      if (!nodeChanged(existing, spec)) return { node: existing, action: 'found' };
      const node = await api.patchNode(existing.pk, spec);
      failPoint('register:after-http');
      return { node, action: 'patched' };
    }
    try {
      const node = await api.createNode(spec);
      api.setNodePk(node.pk);
      failPoint('register:after-http');
      return { node, action: 'created' };
    } catch (err) {
      // Someone registered the same identity between our list and create: look it up again.
      if (isClientError(err, 'bad-request') && /unique|exists|duplicate/i.test(err.detail)) continue;
      throw err;
    }
  }
  throw new Error(`could not register node (${spec.ip}, ${spec.index}): it keeps appearing and disappearing`);
}
