/**
 * The slots while the agent runs (docs/ARCHITECTURE.md, "Live configuration"):
 *
 * - **A new slot count** (a SIGHUP re-read the configuration; `Agent.reconfigure`) applies at once:
 *   fewer slots take no new job and leave when their job ends, more slots register their nodes and
 *   take jobs (a slot whose node still works a job beyond the plan waits for it: `Slots.setNodeBusy`).
 * - **New hardware** (every `hardwareIntervalMs`, and on SIGHUP; `Agent.refreshHardware`): GPUs,
 *   memory and the driver are detected again; node records that differ are PATCHed (the reference's
 *   own node route, allowed to the node itself), and the slots follow the GPUs: with `slots = 0` (one
 *   per GPU) a GPU that appeared gets a slot and one that vanished loses its slot once its job is done.
 */
import type { HardwareJson } from '../../protocol/wire.js';
import type { LogPort } from '../ports.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { NodeHardwareFacts } from '../hardware/detect.js';
import { planSlots, slotKey, type Slots, type SlotSpec } from './slots.js';
import type { SlotNodes } from './nodes.js';

export interface LiveContext {
  slots: Slots;
  nodes: SlotNodes;
  log: LogPort;
  detectHardware(): Promise<NodeHardwareFacts>;
  /** After the slots changed (metrics, readiness). */
  onSlotsChanged(): void;
}

/**
 * Lay the slots out again for `options` and `hardware`: slots whose GPU and node identity stay are
 * kept; new ones register their node first, then take jobs; the others retire.
 */
export async function replanSlots(ctx: LiveContext, options: ResolvedAgentOptions, hardware: NodeHardwareFacts): Promise<{ added: SlotSpec[]; retired: SlotSpec[] }> {
  const { slots, nodes } = ctx;
  const plan = planSlots(options.slots, hardware.gpus.map((g) => g.index), options.nodeIndex);
  const current = slots.specs();
  const wanted = new Set(plan.map(slotKey));
  const have = new Set(current.map(slotKey));
  const added: SlotSpec[] = [];
  for (const spec of plan.filter((s) => !have.has(slotKey(s)))) {
    const slot = { ...spec, index: slots.nextIndex() };
    await nodes.registerAll([slot]);
    slots.add(slot);
    added.push(slot);
  }
  const retired = current.filter((s) => !wanted.has(slotKey(s)));
  for (const spec of retired) {
    // A taken slot keeps its node until it is released: its job reports through it, or the poll loop
    // may be claiming a job through it right now (closing the node's client would cut that claim off).
    if (slots.retire(spec.index) === 'gone') nodes.remove(spec.index);
    else void slots.left(spec.index).then(() => nodes.remove(spec.index));
  }
  if (added.length + retired.length > 0) {
    ctx.log.info(
      { slots: slots.size, added: added.map((s) => ({ slot: s.index, gpu: s.gpu, nodeIndex: s.nodeIndex })), retired: retired.map((s) => s.index) },
      'slots re-planned: retired slots take no new job and leave when their job ends',
    );
    ctx.onSlotsChanged();
  }
  return { added, retired };
}

/** What registration compares, as one comparable value. */
function hardwareKey(h: NodeHardwareFacts): string {
  return JSON.stringify([h.cpuMemBytes, h.driverVersion, [...h.gpus].sort((a, b) => a.index - b.index)]);
}

/**
 * Detect the hardware again; when it changed, update the node records and (one slot per GPU) the
 * slots. Returns whether it changed.
 */
export async function refreshHardware(ctx: LiveContext, options: ResolvedAgentOptions, listHardware: () => Promise<HardwareJson[]>): Promise<boolean> {
  const { nodes } = ctx;
  const before = nodes.hardware;
  const after = await ctx.detectHardware();
  if (hardwareKey(before) === hardwareKey(after)) {
    ctx.log.debug({ gpus: after.gpus.length, cpuMemBytes: after.cpuMemBytes }, 'hardware unchanged');
    return false;
  }
  ctx.log.info(
    {
      before: { gpus: before.gpus.map((g) => g.index), cpuMemBytes: before.cpuMemBytes, driver: before.driverVersion },
      after: { gpus: after.gpus.map((g) => g.index), cpuMemBytes: after.cpuMemBytes, driver: after.driverVersion },
    },
    'hardware changed',
  );
  // The generation table is fetched once, when the first GPU shows up.
  const generations = after.gpus.length > 0 && nodes.generations.length === 0 ? await listHardware() : nodes.generations;
  await nodes.updateHardware(after, generations);
  const gpusChanged = JSON.stringify(before.gpus.map((g) => g.index).sort()) !== JSON.stringify(after.gpus.map((g) => g.index).sort());
  // Slots follow the GPUs: one per GPU (slots = 0), or the configured count shared round-robin.
  if (gpusChanged) await replanSlots(ctx, options, after);
  return true;
}
