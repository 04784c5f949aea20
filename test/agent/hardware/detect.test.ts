import { chmod, readFile, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectHardware, nodeHardwareFacts, type HardwareInfo } from '../../../src/agent/hardware/detect.js';
import { nodeSpecFor } from '../../../src/agent/slots/registration.js';
import { formatHardwareText } from '../../../src/agent/hardware/format.js';
import { hardwareGenerationFor } from '../../../src/agent/hardware/generation.js';
import { primaryIpv4 } from '../../../src/agent/hardware/ip.js';
import { LEGACY_GPU_QUERY_FIELDS, parseNvidiaSmiCsv, queryGpus } from '../../../src/agent/hardware/nvidia-smi.js';
import type { HardwareJson } from '../../../src/protocol/wire.js';
import { tempWorkDir } from '../child/helpers.js';

const FIXTURES = join(import.meta.dirname, '../..', 'fixtures', 'nvidia-smi');
const fixture = (name: string) => readFile(join(FIXTURES, name), 'utf8');

/** A generation table like the server's, with a row at 8.9 of its own to test the boundaries inside a row. */
const GENERATIONS: HardwareJson[] = [
  ['Fermi', 2.0, 3.0],
  ['Kepler', 3.0, 5.0],
  ['Maxwell', 5.0, 6.0],
  ['Pascal', 6.0, 7.0],
  ['Volta', 7.0, 7.5],
  ['Turing', 7.5, 8.0],
  ['Ampere', 8.0, 8.9],
  ['Ada Lovelace', 8.9, 9.0],
  ['Hopper', 9.0, 10.0],
].map(([generation, min, max], i) => ({
  pk: i + 1,
  generation: generation as string,
  min_compute_capability: min as number,
  max_compute_capability: max as number,
}));

/** A fake `nvidia-smi`: a real executable script that prints a fixture (to stdout, as nvidia-smi does). */
async function fakeSmi(body: string): Promise<string> {
  const path = join(await tempWorkDir(), 'nvidia-smi');
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

describe('parseNvidiaSmiCsv on recorded outputs', () => {
  it('reads one GPU', async () => {
    expect(parseNvidiaSmiCsv(await fixture('one-gpu.csv'))).toEqual({
      gpus: [
        {
          index: 0,
          uuid: 'GPU-5c1d2a8e-0b5f-3c2a-9e7d-1f2a3b4c5d6e',
          name: 'NVIDIA GeForce RTX 3090',
          memoryMiB: 24576,
          driverVersion: '535.104.05',
          computeCapability: 8.6,
          pciBusId: '00000000:01:00.0',
        },
      ],
      problems: [],
    });
  });

  it('reads several GPUs of different kinds', async () => {
    const { gpus, problems } = parseNvidiaSmiCsv(await fixture('several-gpus.csv'));
    expect(problems).toEqual([]);
    expect(gpus.map((g) => [g.index, g.name, g.memoryMiB, g.computeCapability])).toEqual([
      [0, 'NVIDIA RTX A6000', 49140, 8.6],
      [1, 'NVIDIA RTX A6000', 49140, 8.6],
      [2, 'Tesla T4', 15360, 7.5],
      [3, 'NVIDIA H100 80GB HBM3', 81559, 9.0],
    ]);
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(4);
  });

  it('reads MIG-enabled GPUs, [N/A] as null', async () => {
    const { gpus, problems } = parseNvidiaSmiCsv(await fixture('mig-enabled.csv'));
    expect(problems).toEqual([]);
    expect(gpus.map((g) => [g.index, g.memoryMiB, g.computeCapability])).toEqual([
      [0, 40960, 8.0],
      [1, null, 8.0],
    ]);
  });

  it('reads [Not Supported] as null', async () => {
    const { gpus } = parseNvidiaSmiCsv(await fixture('not-supported.csv'));
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-3b2c1d0e-9f8a-7b6c-5d4e-3f2a1b0c9d8e',
        name: 'Quadro K2200',
        memoryMiB: null,
        driverVersion: '470.223.02',
        computeCapability: null,
        pciBusId: null,
      },
    ]);
  });

  it('keeps a product name that contains a comma', async () => {
    const { gpus, problems } = parseNvidiaSmiCsv(await fixture('name-with-comma.csv'));
    expect(problems).toEqual([]);
    expect(gpus[0]).toMatchObject({ name: 'NVIDIA Custom, Inc. Board', memoryMiB: 8192, computeCapability: 7.5 });
  });

  it('reads the legacy query without compute_cap', async () => {
    const { gpus } = parseNvidiaSmiCsv(await fixture('old-driver-without-compute-cap.csv'), LEGACY_GPU_QUERY_FIELDS);
    expect(gpus[0]).toMatchObject({ name: 'Tesla V100-PCIE-16GB', computeCapability: null, pciBusId: '00000000:00:1E.0' });
  });

  it('keeps the good lines of garbage and says what it skipped', async () => {
    const { gpus, problems } = parseNvidiaSmiCsv(await fixture('garbage.csv'));
    expect(gpus.map((g) => [g.index, g.name, g.memoryMiB])).toEqual([
      [0, 'NVIDIA GeForce GTX 1080 Ti', 11264],
      [2, 'NVIDIA GeForce RTX 2080', null],
    ]);
    expect(problems).toEqual([
      'not a GPU line: "WARNING: infoROM is corrupted at gpu 0000:02:00.0"',
      'no valid index and UUID in: "x, GPU-bad-index, Something, 1, 2, 3, 4"',
      'no valid index and UUID in: "1, , No UUID, 8192, 535.54.03, 7.5, 00000000:03:00.0"',
      'not a GPU line: "garbage without commas"',
      'memory.total is not a number in: "2, GPU-22222222-3333-4444-5555-666666666666, NVIDIA GeForce RTX 2080, many, 535.54.03, 7.5, 00000000:04:00.0"',
    ]);
  });

  it('finds no GPU in error text', async () => {
    for (const name of ['driver-failure.txt', 'no-devices.txt', 'compute-cap-unsupported.txt']) {
      expect(parseNvidiaSmiCsv(await fixture(name)).gpus).toEqual([]);
    }
  });
});

describe('queryGpus with a real (fake) nvidia-smi', () => {
  it('runs the CSV query and parses it', async () => {
    const smi = await fakeSmi(`echo "$@" > "$(dirname "$0")/args"; cat '${FIXTURES}/several-gpus.csv'`);
    const result = await queryGpus({ binary: smi });
    expect(result.status).toBe('ok');
    expect(result.gpus).toHaveLength(4);
    expect((await readFile(join(smi, '..', 'args'), 'utf8')).trim()).toBe(
      '--query-gpu=index,uuid,name,memory.total,driver_version,compute_cap,pci.bus_id --format=csv,noheader,nounits',
    );
  });

  it('reports a missing binary as a CPU node, not an error', async () => {
    const result = await queryGpus({ binary: '/nonexistent/nvidia-smi' });
    expect(result).toEqual({ status: 'absent', gpus: [], detail: '/nonexistent/nvidia-smi not found: no NVIDIA GPUs', problems: [] });
  });

  it('reports driver failure and no devices with what nvidia-smi said', async () => {
    const failing = await queryGpus({ binary: await fakeSmi(`cat '${FIXTURES}/driver-failure.txt'; exit 9`) });
    expect(failing.status).toBe('failed');
    expect(failing.detail).toMatch(/^NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
    const none = await queryGpus({ binary: await fakeSmi(`cat '${FIXTURES}/no-devices.txt'; exit 6`) });
    expect(none).toMatchObject({ status: 'no-devices', detail: 'No devices were found', gpus: [] });
  });

  it('retries without compute_cap on a driver that does not know it', async () => {
    const smi = await fakeSmi(`case "$*" in
      *compute_cap*) cat '${FIXTURES}/compute-cap-unsupported.txt'; exit 2;;
      *) cat '${FIXTURES}/old-driver-without-compute-cap.csv';;
    esac`);
    const result = await queryGpus({ binary: smi });
    expect(result.status).toBe('ok');
    expect(result.gpus[0]).toMatchObject({ index: 0, name: 'Tesla V100-PCIE-16GB', computeCapability: null });
    expect(result.problems).toEqual(['this driver has no compute_cap field (driver < 510)']);
  });

  it('gives up on an nvidia-smi that hangs', async () => {
    const result = await queryGpus({ binary: await fakeSmi('exec sleep 60'), timeoutMs: 300 });
    expect(result).toMatchObject({ status: 'timeout', gpus: [] });
  });
});

describe('hardwareGenerationFor', () => {
  it('maps compute capabilities with min inclusive and max exclusive', () => {
    const name = (cc: number | null) => hardwareGenerationFor(cc, GENERATIONS)?.generation;
    expect(name(2.0)).toBe('Fermi');
    expect(name(3.0)).toBe('Kepler');
    expect(name(7.0)).toBe('Volta');
    expect(name(7.5)).toBe('Turing');
    expect(name(8.6)).toBe('Ampere');
    expect(name(8.9)).toBe('Ada Lovelace');
    expect(name(0.1 + 8.8)).toBe('Ada Lovelace'); // 8.9000000000000004 is still 8.9
    expect(name(9.0)).toBe('Hopper');
    expect(name(10.0)).toBeUndefined();
    expect(name(1.0)).toBeUndefined();
    expect(name(null)).toBeUndefined();
  });
});

describe('primaryIpv4', () => {
  it('takes the override as it is', async () => {
    expect(await primaryIpv4('192.0.2.7')).toEqual({ address: '192.0.2.7', source: 'override' });
  });

  it('finds an IPv4 address without sending anything', async () => {
    const found = await primaryIpv4();
    expect(isIPv4(found.address)).toBe(true);
    expect(['route', 'fallback']).toContain(found.source);
  });
});

describe('detectHardware', () => {
  it('combines OS facts, GPUs and generations, and feeds registration', async () => {
    const smi = await fakeSmi(`cat '${FIXTURES}/several-gpus.csv'`);
    const hw = await detectHardware({ nvidiaSmi: { binary: smi }, address: '192.0.2.10', generations: GENERATIONS });
    expect(hw.cpus.count).toBeGreaterThanOrEqual(1);
    expect(hw.memory.totalBytes).toBeGreaterThan(0);
    expect(hw.nvidia).toEqual({ status: 'ok', problems: [], driverVersion: '550.54.15' });
    expect(hw.gpus.map((g) => [g.index, g.generation?.name, g.memoryBytes])).toEqual([
      [0, 'Ampere', 49140 * 1024 * 1024],
      [1, 'Ampere', 49140 * 1024 * 1024],
      [2, 'Turing', 15360 * 1024 * 1024],
      [3, 'Hopper', 81559 * 1024 * 1024],
    ]);
    expect(JSON.parse(JSON.stringify(hw))).toEqual(hw); // plain data for `hwinfo --json`

    expect(nodeSpecFor(hw.address.address, 2, 2, nodeHardwareFacts(hw), GENERATIONS)).toEqual({
      ip: '192.0.2.10',
      index: 2,
      cpu_mem: hw.memory.totalBytes,
      driver_version: '550.54.15',
      hardware_generation: 6,
      gpu_mem: 15360 * 1024 * 1024,
    });
  });

  it('describes a CPU node plainly', async () => {
    const hw = await detectHardware({ nvidiaSmi: { binary: '/nonexistent/nvidia-smi' }, address: '192.0.2.11' });
    expect(hw.gpus).toEqual([]);
    expect(hw.nvidia.status).toBe('absent');
    expect(nodeSpecFor(hw.address.address, 0, null, nodeHardwareFacts(hw), [])).toEqual({
      ip: '192.0.2.11',
      index: 0,
      cpu_mem: hw.memory.totalBytes,
      driver_version: null,
      hardware_generation: null,
      gpu_mem: null,
    });
    const text = formatHardwareText(hw);
    expect(text).toContain('address    192.0.2.11 (configured)');
    expect(text).toContain('nvidia     absent: /nonexistent/nvidia-smi not found: no NVIDIA GPUs');
    expect(text).toMatch(/^cpus {7}\d+/m);
  });
});

describe('formatHardwareText', () => {
  it('lists each GPU with memory, compute capability and generation, and any warnings', () => {
    const hw: HardwareInfo = {
      hostname: 'node7',
      platform: 'linux',
      arch: 'x64',
      address: { address: '10.0.0.7', source: 'route' },
      cpus: { count: 32, model: 'AMD EPYC 7302' },
      memory: { totalBytes: 128 * 1024 ** 3, freeBytes: 100 * 1024 ** 3 },
      nvidia: { status: 'ok', problems: ['memory.total is not a number in: "…"'], driverVersion: '535.104.05' },
      gpus: [
        {
          index: 0,
          uuid: 'GPU-1',
          name: 'NVIDIA A100-SXM4-40GB',
          memoryMiB: 40960,
          memoryBytes: 40960 * 1024 * 1024,
          driverVersion: '535.104.05',
          computeCapability: 8.0,
          pciBusId: '00000000:07:00.0',
          generation: { pk: 7, name: 'Ampere' },
        },
        {
          index: 1,
          uuid: 'GPU-2',
          name: 'Mystery',
          memoryMiB: null,
          memoryBytes: null,
          driverVersion: null,
          computeCapability: null,
          pciBusId: null,
          generation: null,
        },
      ],
    };
    expect(formatHardwareText(hw)).toBe(
      [
        'host       node7 (linux/x64)',
        'address    10.0.0.7 (detected)',
        'cpus       32 × AMD EPYC 7302',
        'memory     128.0 GiB total, 100.0 GiB free',
        'nvidia     driver 535.104.05, 2 GPUs',
        'gpu 0      NVIDIA A100-SXM4-40GB, 40.0 GiB, compute 8.0, Ampere (hardware pk 7)',
        '           GPU-1 at 00000000:07:00.0',
        'gpu 1      Mystery, unknown, compute capability unknown',
        '           GPU-2',
        'warning    memory.total is not a number in: "…"',
        '',
      ].join('\n'),
    );
  });
});
