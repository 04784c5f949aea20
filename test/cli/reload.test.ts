/**
 * What changes while the agent runs: SIGHUP to a real `ufdl-agent run` process re-reads its TOML file
 * and applies the log level, the poll schedule and the slot count (two jobs then run at once), names
 * what needs a restart, and looks at the GPUs again (a fake nvidia-smi on PATH whose answer the test
 * changes): the node records get the GPU. And an agent whose hardware facts change (memory, GPUs)
 * updates its node records on its periodic check, without a signal.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startAgent } from '../../src/agent/index.js';
import type { NodeHardwareFacts } from '../../src/agent/hardware/detect.js';
import { LIVE_OPTIONS } from '../../src/agent/options.js';
import { LIVE_AGENT_KEYS } from '../../src/cli/agent-options.js';
import { loadConfig, type ConfigValue, type EffectiveConfig } from '../../src/cli/config/load.js';
import { reload } from '../../src/cli/reload.js';
import { createJob, fastAgentOptions, importTemplate, shellTemplate, until, waitForJob } from '../helpers/agent.js';
import { buildOnce } from '../helpers/build.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { serverEnv, startCli } from './commands-support.js';
import { tempDir } from '../helpers/temp-dir.js';

interface NodeRecord {
  pk: number;
  index: number;
  cpu_mem: number;
  gpu_mem: number | null;
  driver_version: string | null;
}

async function nodes(server: TestServer): Promise<NodeRecord[]> {
  const res = await api(server.url, 'POST', '/v1/nodes/list', { token: server.adminToken, json: {} });
  return (res.body as NodeRecord[]).sort((a, b) => a.index - b.index);
}

const GPU_LINE = '0, GPU-5c1d2a8e-0b5f-3c2a-9e7d-1f2a3b4c5d6e, NVIDIA GeForce RTX 3090, 24576, 535.104.05, 8.6, 00000000:01:00.0\n';

describe('SIGHUP to a running agent', () => {
  beforeAll(() => buildOnce(), 240_000);

  it('applies the log level, poll schedule and slots, names what needs a restart, and re-reads the GPUs', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-reload-');
    // nvidia-smi as the driver answers: no GPU until the test writes gpus.csv.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'nvidia-smi'), `#!/bin/sh\nif [ -f '${dir}/gpus.csv' ]; then cat '${dir}/gpus.csv'; else echo 'No devices were found'; exit 6; fi\n`);
    await chmod(join(bin, 'nvidia-smi'), 0o755);
    const toml = join(dir, 'agent.toml');
    const config = (slots: number, poll: number, level: string, drain: number) =>
      writeFile(toml, `[agent]\nslots = ${slots}\npoll_interval = [${poll}]\nlog_level = "${level}"\ndrain_timeout = ${drain}\nhardware_interval = 0\n`);
    await config(1, 30, 'info', 600);
    const release = join(dir, 'release');
    const template = await importTemplate(server, shellTemplate('reload-wait', `while [ ! -e '${release}' ]; do sleep 0.1; done`));

    const agent = startCli(['run'], {
      env: serverEnv(server, {
        UFDL_AGENT_CONFIG: toml,
        PATH: `${bin}:${process.env.PATH}`,
        UFDL_AGENT_WORK_DIR: join(dir, 'work'),
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_MIN_FREE_DISK: '0',
        UFDL_AGENT_NODE_IP: '127.0.0.1',
        UFDL_AGENT_LOG_FORMAT: 'json',
      }),
      timeoutMs: 120_000,
    });
    onTestFinished(() => {
      agent.child.kill('SIGKILL');
    });
    const logLines = () =>
      agent
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; applied?: string[]; needRestart?: string[] });
    await agent.stdoutMatches(/"msg":"agent running"/);
    expect((await nodes(server)).map((n) => n.index)).toEqual([0]);
    expect(logLines().some((l) => l.level === 20)).toBe(false);

    await config(2, 0.2, 'debug', 900);
    agent.child.kill('SIGHUP');
    await until(() => logLines().some((l) => l.msg.startsWith('configuration reloaded')), 30_000, 'the reload log line');
    const reloaded = logLines().find((l) => l.msg.startsWith('configuration reloaded'))!;
    expect(reloaded.applied!.sort()).toEqual(['agent.log_level', 'agent.poll_interval', 'agent.slots']);
    expect(reloaded.needRestart).toEqual(['agent.drain_timeout']);
    expect(reloaded.msg).toMatch(/only applied at the next start: agent\.drain_timeout/);
    // The second slot registered its own node, and the log level is debug now.
    await until(async () => (await nodes(server)).length === 2, 30_000, 'the second slot node');
    await until(() => logLines().some((l) => l.level === 20), 30_000, 'a debug line');
    // Two slots: two jobs run at once.
    const first = await createJob(server, template);
    const second = await createJob(server, template);
    await waitForJob(server, first, (j) => j.start_time !== null, 30_000);
    await waitForJob(server, second, (j) => j.start_time !== null, 30_000);
    await writeFile(release, '');
    await waitForJob(server, first, (j) => j.end_time !== null, 30_000);
    await waitForJob(server, second, (j) => j.end_time !== null, 30_000);

    // A GPU appears: SIGHUP also looks at the hardware; the nodes become the GPU's.
    await writeFile(join(dir, 'gpus.csv'), GPU_LINE);
    agent.child.kill('SIGHUP');
    await until(async () => (await nodes(server)).some((n) => n.gpu_mem === 24576 * 1024 * 1024), 30_000, 'the GPU in a node record');
    const withGpu = (await nodes(server)).find((n) => n.gpu_mem !== null)!;
    expect(withGpu.driver_version).toBe('535.104.05');
    expect(logLines().some((l) => l.msg === 'hardware changed')).toBe(true);

    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(0);
  });

  it('reports a configuration that no longer loads, and keeps running with the settings in force', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-reload-bad-');
    const toml = join(dir, 'agent.toml');
    await writeFile(toml, '[agent]\nslots = 1\n');
    const agent = startCli(['run'], {
      env: serverEnv(server, { UFDL_AGENT_CONFIG: toml, UFDL_AGENT_WORK_DIR: join(dir, 'work'), UFDL_AGENT_STATUS_PORT: '-1', UFDL_AGENT_MIN_FREE_DISK: '0', UFDL_AGENT_LOG_FORMAT: 'json' }),
      timeoutMs: 60_000,
    });
    onTestFinished(() => {
      agent.child.kill('SIGKILL');
    });
    await agent.stdoutMatches(/"msg":"agent running"/);
    await writeFile(toml, '[agent]\nslots = "many"\nlog_level = "loud"\n');
    agent.child.kill('SIGHUP');
    await agent.stdoutMatches(/configuration not reloaded/);
    expect(agent.stdout()).toMatch(/agent\.slots' from file .*expected an integer, got \\"many\\"/);
    const template = await importTemplate(server, shellTemplate('reload-ok', 'true'));
    const pk = await createJob(server, template);
    expect((await waitForJob(server, pk, (j) => j.end_time !== null, 30_000)).error_reason).toBeNull();
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(0);
  });
});

describe('hardware that changes under a running agent', () => {
  it('is looked at periodically: memory and GPUs reach the node records, and slots follow the GPUs', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-hw-');
    let facts: NodeHardwareFacts = { cpuMemBytes: 8 * 1024 ** 3, driverVersion: null, gpus: [] };
    const agent = await startAgent(fastAgentOptions(server, dir, { slots: 0, hardwareIntervalMs: 200 }), pino({ level: 'silent' }), {
      handleSignals: false,
      deps: { detectHardware: async () => facts },
    });
    onTestFinished(() => agent.close());
    expect((await nodes(server)).map((n) => n.cpu_mem)).toEqual([8 * 1024 ** 3]);

    facts = { ...facts, cpuMemBytes: 16 * 1024 ** 3 };
    await until(async () => (await nodes(server))[0]!.cpu_mem === 16 * 1024 ** 3, 20_000, 'the new memory size on the server');

    // Two GPUs appear: one slot each (slots = 0), registered as (ip, 0) and (ip, 1).
    facts = { ...facts, driverVersion: '550.54', gpus: [0, 1].map((index) => ({ index, memoryBytes: 12 * 1024 ** 3, computeCapability: 8.9 })) };
    // The CPU slot retires; while the poll loop holds it, it takes no job, then it leaves.
    await until(() => JSON.stringify(agent.getStatus().slots.map((s) => s.gpu).sort()) === '[0,1]', 20_000, 'two GPU slots');
    const records = await nodes(server);
    expect(records.map((n) => [n.index, n.gpu_mem, n.driver_version])).toEqual([
      [0, 12 * 1024 ** 3, '550.54'],
      [1, 12 * 1024 ** 3, '550.54'],
    ]);

    // GPU 1 goes away: its slot leaves (it runs no job), GPU 0's stays.
    facts = { ...facts, gpus: facts.gpus.slice(0, 1) };
    await until(() => agent.getStatus().slots.length === 1, 20_000, 'one slot left');
    expect(agent.getStatus().slots[0]!.gpu).toBe(0);
  });

  it('maps every live configuration key to a live agent option', () => {
    expect(Object.values(LIVE_AGENT_KEYS).sort()).toEqual([...LIVE_OPTIONS].sort());
  });
});

describe('the reload log line over several reloads', () => {
  /** A reload target whose configuration the test sets, logging JSON lines into `lines`. */
  function target(values: Record<string, ConfigValue>) {
    const lines: { msg: string; applied?: string[]; needRestart?: string[] }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const config = (v: Record<string, ConfigValue>): EffectiveConfig => ({ values: v, sources: {}, file: undefined });
    let next = config(values);
    const applied: Record<string, ConfigValue>[] = [];
    const t = {
      log,
      initial: config(values),
      load: () => next,
      levelFlag: undefined,
      apply: async (c: EffectiveConfig) => {
        applied.push(c.values);
        return ['agent.slots'];
      },
    };
    const reloaded = () => lines.filter((l) => l.msg.startsWith('configuration reloaded'));
    return { t, set: (v: Record<string, ConfigValue>) => void (next = config(v)), reloaded, applied };
  }

  it('reports live settings against those in force and restart-only ones against the start', async () => {
    const start = { 'agent.slots': 2, 'agent.log_level': 'info', 'agent.drain_timeout': 600 };
    const { t, set, reloaded } = target(start);
    let inForce = t.initial;

    set({ ...start, 'agent.slots': 1, 'agent.drain_timeout': 900 });
    inForce = await reload(t, inForce);
    expect(reloaded().at(-1)).toMatchObject({ applied: ['agent.slots'], needRestart: ['agent.drain_timeout'] });

    // Back to the start's slot count: a change of what is in force, applied as any other.
    set({ ...start, 'agent.drain_timeout': 900 });
    inForce = await reload(t, inForce);
    expect(reloaded().at(-1)).toMatchObject({ applied: ['agent.slots'], needRestart: ['agent.drain_timeout'] });

    // Nothing changed since: nothing applied; the restart-only change is still pending.
    inForce = await reload(t, inForce);
    expect(reloaded().at(-1)).toMatchObject({ applied: [], needRestart: ['agent.drain_timeout'] });
    expect(reloaded().at(-1)!.msg).toMatch(/^configuration reloaded: no live setting changed; changed but only applied at the next start: agent\.drain_timeout$/);

    // The restart-only setting changed back to the start's: nothing needs a restart any more.
    set(start);
    inForce = await reload(t, inForce);
    expect(reloaded().at(-1)).toMatchObject({ applied: [], needRestart: [] });
  });

  it('names a new server.password_file among the settings that need a restart', async () => {
    // The file's contents are read again at each login (test/cli/password-file.test.ts); the path is
    // fixed at the start, so a reload that changes it must say that the change waits for a restart.
    const dir = await tempDir('ufdl-reload-password-');
    const toml = join(dir, 'agent.toml');
    const passwordAt = (file: string) => writeFile(toml, `[server]\npassword_file = "${join(dir, file)}"\n`);
    await writeFile(join(dir, 'old'), 'old-password\n');
    await writeFile(join(dir, 'new'), 'new-password\n');
    await passwordAt('old');
    const load = () => loadConfig({ file: toml, env: {} });
    const lines: { msg: string; applied?: string[]; needRestart?: string[] }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const t = { log, initial: load(), load, levelFlag: undefined, apply: async () => Object.keys(LIVE_AGENT_KEYS) };
    await passwordAt('new');
    await reload(t);
    expect(lines.find((l) => l.msg.startsWith('configuration reloaded'))).toMatchObject({ applied: [], needRestart: ['server.password_file'] });
  });

  it('keeps reporting a live change whose application failed until one succeeds', async () => {
    const start = { 'agent.slots': 1, 'agent.log_level': 'info' };
    const { t, set, reloaded } = target(start);
    let fail = true;
    const apply = t.apply;
    t.apply = async (c) => {
      if (fail) throw new Error('the slots could not be planned');
      return apply(c);
    };
    set({ ...start, 'agent.slots': 3 });
    let inForce = await reload(t, t.initial);
    expect(reloaded().at(-1)).toMatchObject({ applied: [] });
    fail = false;
    inForce = await reload(t, inForce);
    expect(reloaded().at(-1)).toMatchObject({ applied: ['agent.slots'], needRestart: [] });
  });
});
