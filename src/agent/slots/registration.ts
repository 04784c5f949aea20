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

/** The registration calls of a client sending `nodePk` as `Node-Id` (null: none). */
export type RegistrationClients = (nodePk: number | null) => RegistrationApi;

/**
 * Register one node: list by identity → PATCH if found and changed, or create. A create that loses a
 * race with another registration of the same identity (400 duplicate) looks it up again.
 *
 * The calls go through clients of their own (`clientAs`), never the slot's: while a slot registers
 * again, its other calls (progress, the live log) keep the pk they had, and a server that forgot it
 * answers them `400 Bad Node-Id`, which the agent knows how to wait out. Sent without a `Node-Id`,
 * they were answered 401/403, which reads as "not your job" (the live log stopped streaming). The
 * caller gives the slot's client the new pk once this returns.
 */
export async function registerNode(clientAs: RegistrationClients, spec: NodeSpec): Promise<Registered> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const [existing] = await clientAs(null).listNodes(nodeIdentityFilter(spec.ip, spec.index));
    if (existing) {
      if (!nodeChanged(existing, spec)) return { node: existing, action: 'found' };
      // PATCH requires "node is self": it is sent as that node.
      const node = await clientAs(existing.pk).patchNode(existing.pk, spec);
      failPoint('register:after-http');
      return { node, action: 'patched' };
    }
    try {
      const node = await clientAs(null).createNode(spec);
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
