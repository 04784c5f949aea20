import { describe, expect, it } from 'vitest';
import { ClientError } from '../../../src/client/errors.js';
import { nodeChanged, nodeSpecFor, registerNode, type RegistrationClients } from '../../../src/agent/slots/registration.js';
import type { NodeJson, NodeSpec } from '../../../src/protocol/wire.js';

const GENERATIONS = [
  { pk: 1, generation: 'Turing', min_compute_capability: 7.5, max_compute_capability: 8.0 },
  { pk: 2, generation: 'Ampere', min_compute_capability: 8.0, max_compute_capability: 9.0 },
];
const HARDWARE = {
  cpuMemBytes: 16 * 1024 ** 3,
  driverVersion: '550.54',
  gpus: [
    { index: 0, memoryBytes: 24 * 1024 ** 3, computeCapability: 8.6 },
    { index: 1, memoryBytes: 8 * 1024 ** 3, computeCapability: 7.5 },
  ],
};

function node(spec: NodeSpec, pk = 5): NodeJson {
  return {
    pk,
    ip: spec.ip,
    index: spec.index,
    driver_version: spec.driver_version ?? null,
    hardware_generation: spec.hardware_generation ?? null,
    gpu_mem: spec.gpu_mem ?? null,
    cpu_mem: spec.cpu_mem,
    last_seen: null,
    current_job: null,
  };
}

/** Registration's calls, each recorded with the `Node-Id` its client sends. */
function fakeApi(existing: NodeJson[], options: { duplicateOnce?: boolean } = {}) {
  const calls: string[] = [];
  let duplicate = options.duplicateOnce ?? false;
  const clientAs: RegistrationClients = (nodePk) => ({
    listNodes: async () => {
      calls.push(`list as ${nodePk}`);
      return existing;
    },
    createNode: async (spec) => {
      calls.push(`create as ${nodePk}`);
      if (duplicate) {
        duplicate = false;
        existing.push(node(spec, 9));
        throw new ClientError({ kind: 'bad-request', method: 'POST', path: '/v1/nodes/create', status: 400, detail: 'UNIQUE constraint failed: nodes.ip, nodes.index' });
      }
      return node(spec, 7);
    },
    patchNode: async (pk, spec) => {
      calls.push(`patch ${pk} as ${nodePk}`);
      return node(spec as NodeSpec, pk);
    },
  });
  return { clientAs, calls };
}

describe('nodeSpecFor()', () => {
  it("reports the slot's GPU: memory, driver and the generation of its compute capability", () => {
    expect(nodeSpecFor('10.0.0.5', 1, 1, HARDWARE, GENERATIONS)).toEqual({
      ip: '10.0.0.5',
      index: 1,
      cpu_mem: 16 * 1024 ** 3,
      driver_version: '550.54',
      hardware_generation: 1,
      gpu_mem: 8 * 1024 ** 3,
    });
  });

  it('reports no GPU fields for a CPU slot', () => {
    expect(nodeSpecFor('10.0.0.5', 0, null, HARDWARE, GENERATIONS)).toMatchObject({ driver_version: null, hardware_generation: null, gpu_mem: null });
  });
});

describe('registerNode()', () => {
  const spec = nodeSpecFor('10.0.0.5', 0, 0, HARDWARE, GENERATIONS);

  it('creates the node when none has its identity, asking as no node', async () => {
    const { clientAs, calls } = fakeApi([]);
    const result = await registerNode(clientAs, spec);
    expect(result.action).toBe('created');
    expect(result.node.pk).toBe(7);
    expect(calls).toEqual(['list as null', 'create as null']);
  });

  it('keeps a node whose hardware is unchanged, without a PATCH', async () => {
    const { clientAs, calls } = fakeApi([node(spec, 3)]);
    const result = await registerNode(clientAs, spec);
    expect(result.action).toBe('found');
    expect(result.node.pk).toBe(3);
    expect(calls).toEqual(['list as null']);
  });

  it('PATCHes, as itself, a node whose hardware changed', async () => {
    const { clientAs, calls } = fakeApi([node({ ...spec, gpu_mem: 1 }, 3)]);
    expect((await registerNode(clientAs, spec)).action).toBe('patched');
    expect(calls).toEqual(['list as null', 'patch 3 as 3']);
  });

  it('looks the node up again when a create loses a race (400 duplicate)', async () => {
    const { clientAs, calls } = fakeApi([], { duplicateOnce: true });
    const result = await registerNode(clientAs, spec);
    expect(result.action).toBe('found');
    expect(result.node.pk).toBe(9);
    expect(calls).toEqual(['list as null', 'create as null', 'list as null']);
  });

  it('nodeChanged() compares every reported field', () => {
    expect(nodeChanged(node(spec), spec)).toBe(false);
    expect(nodeChanged(node({ ...spec, cpu_mem: 1 }), spec)).toBe(true);
    expect(nodeChanged(node({ ...spec, driver_version: '1' }), spec)).toBe(true);
    expect(nodeChanged(node({ ...spec, hardware_generation: 1 }), spec)).toBe(true);
  });
});
