/**
 * Everything the agent knows about its machine, in one plain object: what `ufdl-agent hwinfo` prints
 * (as JSON, or through {@link formatHardwareText}), what registration sends, and what slots are made
 * of (one per GPU). Unlike the reference, CPUs are counted and a missing `nvidia-smi` is said plainly.
 */
import { availableParallelism, arch, cpus, freemem, hostname, platform, totalmem } from 'node:os';
import type { HardwareJson } from '../../protocol/wire.js';
import { hardwareGenerationFor } from './generation.js';
import { primaryIpv4, type PrimaryAddress } from './ip.js';
import { queryGpus, type GpuInfo, type NvidiaSmiResult, type QueryGpusOptions } from './nvidia-smi.js';

/** A GPU with what the agent derives from it. */
export interface DetectedGpu extends GpuInfo {
  memoryBytes: number | null;
  /** The server's generation for its compute capability (when a table was given and one matches). */
  generation: { pk: number; name: string } | null;
}

/** The machine. Plain data, JSON-serialisable. */
export interface HardwareInfo {
  hostname: string;
  platform: string;
  arch: string;
  address: PrimaryAddress;
  cpus: { count: number; model: string | null };
  memory: { totalBytes: number; freeBytes: number };
  nvidia: Omit<NvidiaSmiResult, 'gpus'> & { driverVersion: string | null };
  gpus: DetectedGpu[];
}

/** Options of {@link detectHardware}. */
export interface DetectOptions {
  nvidiaSmi?: QueryGpusOptions;
  /** The node address override (`node_address`); detected when absent. */
  address?: string;
  /** The server's hardware generations, to name each GPU's; without it `generation` is `null`. */
  generations?: readonly HardwareJson[];
}

const MIB = 1024 * 1024;

/** Detect the machine's hardware. Never throws: a failed probe is reported in the result. */
export async function detectHardware(options: DetectOptions = {}): Promise<HardwareInfo> {
  const [address, smi] = await Promise.all([primaryIpv4(options.address), queryGpus(options.nvidiaSmi)]);
  const { gpus, ...nvidia } = smi;
  return {
    hostname: hostname(),
    platform: platform(),
    arch: arch(),
    address,
    // availableParallelism honours the CPU affinity mask (taskset, cgroups' cpusets), os.cpus() does not.
    cpus: { count: availableParallelism(), model: cpus()[0]?.model.trim() ?? null },
    memory: { totalBytes: totalmem(), freeBytes: freemem() },
    nvidia: { ...nvidia, driverVersion: gpus.find((g) => g.driverVersion !== null)?.driverVersion ?? null },
    gpus: gpus.map((gpu) => {
      const generation = options.generations ? hardwareGenerationFor(gpu.computeCapability, options.generations) : undefined;
      return {
        ...gpu,
        memoryBytes: gpu.memoryMiB === null ? null : gpu.memoryMiB * MIB,
        generation: generation ? { pk: generation.pk, name: generation.generation } : null,
      };
    }),
  };
}

/** What registration needs to know about the machine: each slot's node reports its own GPU of these. */
export interface NodeHardwareFacts {
  /** RAM in bytes. */
  cpuMemBytes: number;
  driverVersion: string | null;
  gpus: { index: number; memoryBytes: number | null; computeCapability: number | null }[];
}

/** The registration facts of a detected machine (`slots/registration.ts` makes each node's body of them). */
export function nodeHardwareFacts(hw: HardwareInfo): NodeHardwareFacts {
  return {
    cpuMemBytes: hw.memory.totalBytes,
    driverVersion: hw.nvidia.driverVersion,
    gpus: hw.gpus.map((g) => ({ index: g.index, memoryBytes: g.memoryBytes, computeCapability: g.computeCapability })),
  };
}
