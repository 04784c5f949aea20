/**
 * An agent restarted with fewer slots than it had (the configuration changed, a GPU is gone) may find
 * more unfinished jobs in its journal than it has slots. As when the plan shrinks while the agent runs,
 * such a job carries on in a slot beyond the plan, which takes no new job and leaves when the job ends:
 * a child that still runs is supervised to its end, a run that ended while the agent was down has its
 * outputs uploaded and its finish reported. Nothing is thrown away and run again.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer } from '../../helpers/server.js';
import {
  alive,
  createJob,
  downloadOutput,
  fastAgentOptions,
  getJob,
  importTemplate,
  readRuns,
  shellTemplate,
  spawnAgent,
  until,
  waitForJob,
  type AgentProcess,
} from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { cli } from '../../cli/commands-support.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

interface StatusSlot {
  index: number;
  gpu: number | null;
  nodePk: number | null;
  jobPk: number | null;
  retiring?: true;
}

async function statusSlots(statusUrl: string): Promise<StatusSlot[]> {
  const status = (await (await fetch(`${statusUrl}/status.json`)).json()) as { slots: StatusSlot[] };
  return status.slots;
}

/**
 * Each run appends "<pk> <pid of its script>" to `runs`, writes its pid to an output, then waits until
 * the test opens its gate (a file named after the job), or all gates at its end (`go-all`, or the
 * directory removed): a test that fails leaves no run behind.
 */
function gatedScript(dir: string, runs: string): string {
  return `echo "$UFDL_JOB_PK $$" >> ${runs}\necho "$$" > "$UFDL_OUTPUT_DIR/run.txt"\nwhile [ -d ${dir} ] && [ ! -e ${dir}/go-$UFDL_JOB_PK ] && [ ! -e ${dir}/go-all ]; do sleep 0.05; done\necho done\n`;
}

const openGate = (dir: string, pk: number) => writeFile(join(dir, `go-${pk}`), '');

/** Start two gated jobs on a two-slot agent, then kill that agent: both children run on without it. */
async function twoRunsThenCrash(label: string) {
  const server = await startTestServer();
  const dir = await tempDir(`ufdl-fewer-slots-${label}-`);
  const runs = join(dir, 'runs.txt');
  onTestFinished(() => writeFile(join(dir, 'go-all'), ''));
  const template = await importTemplate(server, shellTemplate(`gated-${label}`, gatedScript(dir, runs)));
  const pks = [await createJob(server, template), await createJob(server, template)];
  const first = spawnAgent(fastAgentOptions(server, dir, { slots: 2 }));
  await until(async () => (await readRuns(runs)).length === 2, 30_000, 'both jobs to run');
  first.kill('SIGKILL');
  await first.exited;
  const pids = new Map((await readRuns(runs)).map((line) => line.split(' ').map(Number) as [number, number]));
  expect([...pids.values()].every(alive)).toBe(true);
  return { server, dir, runs, template, pks, pids };
}

async function runningStatus(agent: AgentProcess): Promise<string> {
  const line = await agent.waitForLog((l) => l.msg === 'test agent running', 30_000);
  return line.status as string;
}

describe('an agent restarted with fewer slots than jobs in its journal', () => {
  it('supervises each running child to its end; the extra slot takes no new job and leaves with its job', async () => {
    const { server, dir, runs, template, pks, pids } = await twoRunsThenCrash('running');

    // Only the heartbeat speaks for a silent job's node (no cancel check within the test).
    const second = spawnAgent(fastAgentOptions(server, dir, { slots: 1, cancelCheckIntervalMs: 600_000, heartbeatIntervalMs: 200 }));
    const statusUrl = await runningStatus(second);
    // Both children run on, watched: one in the plan's slot, one in a slot beyond it.
    const slots = await statusSlots(statusUrl);
    expect(slots, JSON.stringify(slots)).toHaveLength(2);
    const beyond = slots.find((s) => s.retiring === true);
    const inPlan = slots.find((s) => s.retiring === undefined);
    expect(beyond?.jobPk, JSON.stringify(slots)).toBeOneOf(pks);
    expect(inPlan?.jobPk, JSON.stringify(slots)).toBeOneOf(pks);
    expect(beyond!.jobPk).not.toBe(inPlan!.jobPk);
    for (const pid of pids.values()) expect(alive(pid)).toBe(true);
    // The job reports as the node it was acquired as, which the extra slot shows.
    expect(beyond!.nodePk).toBe((await getJob(server, beyond!.jobPk!)).node);
    // The heartbeat pings that node too, though no slot of the plan registers it.
    const lastSeen = async () => ((await api(server.url, 'GET', `/v1/nodes/${beyond!.nodePk}`, { token: server.adminToken })).body as { last_seen: string }).last_seen;
    const seen = await lastSeen();
    await until(async () => (await lastSeen()) > seen, 10_000, `node ${beyond!.nodePk} to be pinged`);
    const shown = await cli(['status', '--status-url', statusUrl]);
    expect(shown.stdout, shown.stderr).toMatch(/^slots: 2 \(2 busy, 1 leaving when its job ends\)$/m);
    expect(shown.stdout).toMatch(new RegExp(`^\\s*${beyond!.index} \\(leaving\\)\\s+-\\s+${beyond!.nodePk}\\s+${beyond!.jobPk}$`, 'm'));

    // A third job waits: the plan's only slot is busy, and the extra slot takes no new job.
    const third = await createJob(server, template);
    await openGate(dir, beyond!.jobPk!);
    const ended = await waitForJob(server, beyond!.jobPk!, (j) => j.end_time !== null, 20_000);
    expect(ended.error_reason).toBeNull();
    await until(async () => (await statusSlots(statusUrl)).length === 1, 10_000, 'the extra slot to leave');
    expect((await statusSlots(statusUrl))[0]).toMatchObject({ index: inPlan!.index, jobPk: inPlan!.jobPk });
    expect((await getJob(server, third)).node).toBeNull();

    // The plan's slot frees: the third job runs there, and every job ran exactly once.
    await openGate(dir, inPlan!.jobPk!);
    await openGate(dir, third);
    for (const pk of [inPlan!.jobPk!, third]) {
      const job = await waitForJob(server, pk, (j) => j.end_time !== null, 30_000);
      expect(job.error_reason, second.output().slice(-3000)).toBeNull();
    }
    expect((await readRuns(runs)).map((line) => Number(line.split(' ')[0])).sort()).toEqual([...pks, third].sort());
    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("gives the plan's slot to its own node's job, though an older job of a node no slot registers any more comes first", async () => {
    const { server, dir, pks, pids } = await twoRunsThenCrash('order');
    const [older, newer] = [await getJob(server, pks[0]!), await getJob(server, pks[1]!)];
    // The restarted agent's only slot registers the node of the newer job.
    const { index } = (await api(server.url, 'GET', `/v1/nodes/${newer.node}`, { token: server.adminToken })).body as { index: number };
    const second = spawnAgent(fastAgentOptions(server, dir, { slots: 1, nodeIndex: index }));
    const statusUrl = await runningStatus(second);
    const slots = await statusSlots(statusUrl);
    expect(slots.find((s) => s.retiring === undefined), JSON.stringify(slots)).toMatchObject({ jobPk: newer.pk, nodePk: newer.node });
    expect(slots.find((s) => s.retiring === true), JSON.stringify(slots)).toMatchObject({ jobPk: older.pk, nodePk: older.node });
    const ready = async () => (await fetch(`${statusUrl}/readyz`)).status;
    expect(await ready()).toBe(503);

    // The plan's slot frees while the older job runs on beyond the plan: the agent is ready again.
    await openGate(dir, newer.pk);
    await waitForJob(server, newer.pk, (j) => j.end_time !== null, 20_000);
    await until(async () => (await ready()) === 200, 10_000, 'the agent to be ready with its plan slot free');
    expect(alive(pids.get(older.pk)!)).toBe(true);
    await openGate(dir, older.pk);
    expect((await waitForJob(server, older.pk, (j) => j.end_time !== null, 20_000)).error_reason).toBeNull();
    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("reports a run that ended while the agent was down, with that run's outputs, rather than running it again", async () => {
    const { server, dir, runs, pks, pids } = await twoRunsThenCrash('ended');
    // Both runs end while no agent watches them; their wrappers keep the exit status.
    for (const pk of pks) await openGate(dir, pk);
    await until(() => [...pids.values()].every((pid) => !alive(pid)), 10_000, 'both runs to end');

    const second = spawnAgent(fastAgentOptions(server, dir, { slots: 1 }));
    await runningStatus(second);
    for (const pk of pks) {
      const job = await waitForJob(server, pk, (j) => j.end_time !== null, 30_000);
      expect(job.error_reason, second.output().slice(-3000)).toBeNull();
      // The output is the first run's: the pid its script wrote.
      expect((await downloadOutput(server, pk, 'run.txt')).toString().trim()).toBe(String(pids.get(pk)));
    }
    expect(await readRuns(runs)).toHaveLength(2);
    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
