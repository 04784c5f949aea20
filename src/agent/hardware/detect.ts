/**
 * Everything the agent knows about its machine, in one plain object: what `ufdl-agent hwinfo` prints
 * (as JSON, or through {@link formatHardwareText}), what registration sends, and what slots are made
 * of (one per GPU). Unlike the reference, CPUs are counted and a missing `nvidia-smi` is said plainly.
 */
import { availableParallelism, arch, cpus, freemem, hostname, platform, totalmem } from 'node:os';
import type { HardwareJson, NodeSpec } from '../../protocol/wire.js';
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

/**
 * The body of node create/update for this machine with identity index `index`: the GPU with that
 * index supplies the GPU fields (the reference's `gpu_id` rule), else the first GPU, else none.
 */
export function nodeSpecFor(hw: HardwareInfo, index = 0): NodeSpec {
  const gpu = hw.gpus.find((g) => g.index === index) ?? hw.gpus[0];
  return {
    ip: hw.address.address,
    index,
    cpu_mem: hw.memory.totalBytes,
    driver_version: gpu?.driverVersion ?? null,
    hardware_generation: gpu?.generation?.pk ?? null,
    gpu_mem: gpu?.memoryBytes ?? null,
  };
}
