/**
 * A Docker job's resource limits, from template parameters (usually `const`, with defaults):
 *
 * | parameter       | type          | `docker run`                                       |
 * |-----------------|---------------|----------------------------------------------------|
 * | `docker_memory` | `str` / `int` | `--memory` and `--memory-swap` (no swap beyond it): `512m`, `8g`, or bytes |
 * | `docker_cpus`   | `float`       | `--cpus`: how many CPUs' worth of time, e.g. `2` or `0.5`; at least `0.01` |
 *
 * A container that reaches its memory limit is killed by the kernel, and the job's error says so.
 */
import { PrepareError } from './errors.js';

export const DOCKER_LIMIT_PARAMETERS = ['docker_memory', 'docker_cpus'] as const;

/** `512m`, `8g`, `1.5g`, `100000000`: what `--memory` takes (b, k, m, g, t; optional `b`/`ib`). */
const MEMORY = /^(\d{1,15})(\.\d{1,6})?\s*([kmgt]?)(i?b)?$/i;
/** Docker refuses a memory limit below 6 MiB. */
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
/** Docker's smallest CPU limit; `--cpus` keeps two decimals. */
const MIN_CPUS = 0.01;
const UNIT_BYTES: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** The `docker run` flags for the limits the parameters set (none when they are absent or empty). */
export function dockerLimitFlags(parameters: Readonly<Record<string, unknown>>): string[] {
  const flags: string[] = [];
  const memory = memoryBytes(parameters['docker_memory']);
  if (memory !== undefined) flags.push('--memory', String(memory), '--memory-swap', String(memory));
  const cpus = cpuCount(parameters['docker_cpus']);
  if (cpus !== undefined) flags.push('--cpus', String(cpus));
  return flags;
}

function memoryBytes(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '' || value === 0) return undefined;
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  const match = text === undefined ? null : MEMORY.exec(text);
  if (match === null) {
    throw bad('docker_memory', `expected a size such as 512m or 8g, got ${JSON.stringify(value)}`);
  }
  const bytes = Math.floor(Number(`${match[1]}${match[2] ?? ''}`) * UNIT_BYTES[match[3]!.toLowerCase()]!);
  if (bytes < MIN_MEMORY_BYTES) throw bad('docker_memory', `${JSON.stringify(value)} is below Docker's minimum of 6m`);
  return bytes;
}

function cpuCount(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '' || value === 0) return undefined;
  const n = typeof value === 'string' ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 4096) {
    throw bad('docker_cpus', `expected a positive number of CPUs, got ${JSON.stringify(value)}`);
  }
  // Below Docker's minimum the rounding gives `--cpus 0`, which Docker reads as no limit at all.
  if (n < MIN_CPUS) throw bad('docker_cpus', `${JSON.stringify(value)} is below Docker's minimum of ${MIN_CPUS}`);
  return Math.round(n * 100) / 100;
}

function bad(name: string, message: string): PrepareError {
  return new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', `Parameter '${name}': ${message}`, { subject: name });
}
