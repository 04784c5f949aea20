/** `ufdl-agent hwinfo` as text, for people (the JSON form is the {@link HardwareInfo} itself). */
import type { HardwareInfo } from './detect.js';

const GIB = 1024 ** 3;

function gib(bytes: number | null): string {
  return bytes === null ? 'unknown' : `${(bytes / GIB).toFixed(1)} GiB`;
}

/** A few aligned lines describing the machine. */
export function formatHardwareText(hw: HardwareInfo): string {
  const lines = [
    `host       ${hw.hostname} (${hw.platform}/${hw.arch})`,
    `address    ${hw.address.address} (${describeAddress(hw)})`,
    `cpus       ${hw.cpus.count}${hw.cpus.model ? ` × ${hw.cpus.model}` : ''}`,
    `memory     ${gib(hw.memory.totalBytes)} total, ${gib(hw.memory.freeBytes)} free`,
  ];
  if (hw.nvidia.status === 'ok') {
    lines.push(`nvidia     driver ${hw.nvidia.driverVersion ?? 'unknown'}, ${hw.gpus.length} GPU${hw.gpus.length === 1 ? '' : 's'}`);
  } else {
    lines.push(`nvidia     ${hw.nvidia.status}: ${hw.nvidia.detail ?? ''}`.trimEnd());
  }
  for (const gpu of hw.gpus) {
    const cc = gpu.computeCapability === null ? 'compute capability unknown' : `compute ${gpu.computeCapability.toFixed(1)}`;
    const generation = gpu.generation ? `, ${gpu.generation.name} (hardware pk ${gpu.generation.pk})` : '';
    lines.push(`gpu ${gpu.index}      ${gpu.name}, ${gib(gpu.memoryBytes)}, ${cc}${generation}`);
    lines.push(`           ${gpu.uuid}${gpu.pciBusId ? ` at ${gpu.pciBusId}` : ''}`);
  }
  for (const problem of hw.nvidia.problems) lines.push(`warning    ${problem}`);
  return `${lines.join('\n')}\n`;
}

function describeAddress(hw: HardwareInfo): string {
  switch (hw.address.source) {
    case 'override':
      return 'configured';
    case 'route':
      return 'detected';
    default:
      return `no route, fallback${hw.address.detail ? `: ${hw.address.detail}` : ''}`;
  }
}
