/**
 * GPUs from `nvidia-smi`'s CSV query interface, which is stable across driver versions, unlike the
 * human-readable `nvidia-smi -q` the reference worker scrapes:
 *
 * ```
 * nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,compute_cap,pci.bus_id \
 *            --format=csv,noheader,nounits
 * 0, GPU-5c1d…, NVIDIA GeForce RTX 3090, 24576, 535.104.05, 8.6, 00000000:01:00.0
 * ```
 *
 * `compute_cap` exists since driver 510; older drivers refuse the whole query, so it is retried
 * without that field. Values such as `[N/A]` or `[Not Supported]` (MIG mode, old boards) become
 * `null`. A missing binary means "no NVIDIA GPUs", reported as such rather than as an error.
 */
import { isProgramError, runProgram } from '../run-program.js';

/** One GPU as `nvidia-smi` reports it. */
export interface GpuInfo {
  /** The CUDA device index (what `CUDA_VISIBLE_DEVICES` and `--gpus device=` take). */
  index: number;
  /** `GPU-…`; stable across reboots and re-enumeration, unlike the index. */
  uuid: string;
  name: string;
  /** Total frame-buffer memory in MiB, or `null` when not reported. */
  memoryMiB: number | null;
  driverVersion: string | null;
  /** e.g. 8.6; `null` with drivers before 510 or when not reported. */
  computeCapability: number | null;
  pciBusId: string | null;
}

/** The query fields in order; {@link parseNvidiaSmiCsv} reads lines of exactly these. */
export const GPU_QUERY_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'driver_version', 'compute_cap', 'pci.bus_id'] as const;

export type GpuQueryField = (typeof GPU_QUERY_FIELDS)[number];

/** The query without `compute_cap`, for drivers before 510. */
export const LEGACY_GPU_QUERY_FIELDS: readonly GpuQueryField[] = GPU_QUERY_FIELDS.filter((f) => f !== 'compute_cap');

/** What {@link parseNvidiaSmiCsv} makes of an output. */
export interface GpuParse {
  gpus: GpuInfo[];
  /** Lines that were not understood, or values that were ignored, each with the reason. */
  problems: string[];
}

/**
 * Parse the CSV lines of a `--query-gpu` run with `fields` (by default {@link GPU_QUERY_FIELDS}).
 * Never throws: what cannot be read is listed in `problems`.
 */
export function parseNvidiaSmiCsv(text: string, fields: readonly GpuQueryField[] = GPU_QUERY_FIELDS): GpuParse {
  const gpus: GpuInfo[] = [];
  const problems: string[] = [];
  const nameAt = fields.indexOf('name');
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    let cells = line.split(',').map((c) => c.trim());
    if (cells.length < fields.length) {
      problems.push(`not a GPU line: ${JSON.stringify(line)}`);
      continue;
    }
    if (cells.length > fields.length && nameAt >= 0) {
      // Only the product name can contain a comma; give it the surplus cells.
      const surplus = cells.length - fields.length;
      cells = [...cells.slice(0, nameAt), cells.slice(nameAt, nameAt + surplus + 1).join(', '), ...cells.slice(nameAt + surplus + 1)];
    }
    const cell = (field: GpuQueryField): string | null => {
      const at = fields.indexOf(field);
      if (at < 0) return null;
      const value = cells[at]!;
      // `[N/A]`, `[Not Supported]`, `[Unknown Error]`, `[Insufficient Permissions]`, …
      return value === '' || value === 'N/A' || /^\[.*\]$/.test(value) ? null : value;
    };
    const indexText = cell('index');
    const index = indexText === null ? NaN : Number(indexText);
    const uuid = cell('uuid');
    if (!Number.isSafeInteger(index) || index < 0 || uuid === null) {
      problems.push(`no valid index and UUID in: ${JSON.stringify(line)}`);
      continue;
    }
    const memoryMiB = number(cell('memory.total'), 'memory.total', line, problems);
    const computeCapability = number(cell('compute_cap'), 'compute_cap', line, problems);
    gpus.push({
      index,
      uuid,
      name: cell('name') ?? 'unknown',
      memoryMiB,
      driverVersion: cell('driver_version'),
      computeCapability,
      pciBusId: cell('pci.bus_id'),
    });
  }
  return { gpus, problems };
}

function number(text: string | null, field: string, line: string, problems: string[]): number | null {
  if (text === null) return null;
  const value = Number(text);
  if (Number.isFinite(value) && value >= 0) return value;
  problems.push(`${field} is not a number in: ${JSON.stringify(line)}`);
  return null;
}

/** The outcome of running `nvidia-smi`. */
export interface NvidiaSmiResult {
  /**
   * `ok`: it answered (with any number of GPUs); `absent`: no such binary, a CPU node; `no-devices`:
   * the driver is there but sees no GPU; `failed`: it ran and failed (driver trouble);
   * `timeout`: it hung (a wedged GPU does that) and was killed.
   */
  status: 'ok' | 'absent' | 'no-devices' | 'failed' | 'timeout';
  gpus: GpuInfo[];
  /** For anything but `ok`: what `nvidia-smi` said, or why it could not run. */
  detail?: string;
  problems: string[];
}

/** Options of {@link queryGpus}. */
export interface QueryGpusOptions {
  /**
   * The binary (a name looked up in `PATH`, or a path).
   * @default 'nvidia-smi'
   */
  binary?: string;
  /**
   * Kill it after this long.
   * @default 10000
   */
  timeoutMs?: number;
}

/** Run `nvidia-smi` and parse its GPUs; never throws. */
export async function queryGpus(options: QueryGpusOptions = {}): Promise<NvidiaSmiResult> {
  const first = await runQuery(GPU_QUERY_FIELDS, options);
  if (first.status === 'failed' && /compute_cap/.test(first.detail ?? '')) {
    const legacy = await runQuery(LEGACY_GPU_QUERY_FIELDS, options);
    if (legacy.status === 'ok') legacy.problems.unshift('this driver has no compute_cap field (driver < 510)');
    return legacy;
  }
  return first;
}

async function runQuery(fields: readonly GpuQueryField[], options: QueryGpusOptions): Promise<NvidiaSmiResult> {
  const binary = options.binary ?? 'nvidia-smi';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const args = [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
  try {
    const { stdout } = await runProgram(binary, args, { timeoutMs });
    const { gpus, problems } = parseNvidiaSmiCsv(stdout, fields);
    return { status: 'ok', gpus, problems };
  } catch (err) {
    if (!isProgramError(err)) throw err;
    if (err.kind === 'not-found') return { status: 'absent', gpus: [], detail: `${binary} not found: no NVIDIA GPUs`, problems: [] };
    if (err.kind === 'timeout') return { status: 'timeout', gpus: [], detail: `${binary} did not answer within ${timeoutMs} ms`, problems: [] };
    // nvidia-smi writes its errors to stdout.
    const said = `${err.stdout}\n${err.stderr}`.trim().split('\n').filter(Boolean).join(' ') || err.message;
    const status = /no devices were found/i.test(said) ? 'no-devices' : 'failed';
    return { status, gpus: [], detail: said, problems: [] };
  }
}
