/**
 * Slots raised by SIGHUP while a job still runs beyond the plan. A job runs beyond the plan when its
 * slot left it: a SIGHUP with fewer slots while it ran, or a restart with fewer slots than jobs in
 * the journal. Its job reports as the node it was acquired as; a SIGHUP with more slots then plans that
 * node's identity again, and the new slot registers the very node the job reports as. While that job
 * runs, the new slot must not poll or acquire as its node: the server starts no second job on a node
 * that works one, so every job it took was acquired, prepared, refused its start and given back, over
 * and over. Once the job has left, the slot polls and runs jobs like any other, and every job runs
 * once, reported by its own run.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createJob, downloadOutput, getJob, importTemplate, readRuns, shellTemplate, until, waitForJob } from '../../helpers/agent.js';
import { buildOnce } from '../../helpers/build.js';
import { api, freePort, startTestServer, type LocalTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { cli, serverEnv, startCli } from '../../cli/commands-support.js';

beforeAll(async () => {
  await buildOnce();
}, 240_000);

/** A request as the server received it: who sent it (`Node-Id`, null: none), and what. */
interface Seen {
  node: number | null;
  method: string;
  path: string;
}

/** Every request the server receives from now on, in the order it reads them. */
function recordRequests(server: LocalTestServer): Seen[] {
  const seen: Seen[] = [];
  server.onRequest((request) => {
    const node = request.headers['node-id'];
    seen.push({ node: typeof node === 'string' ? Number(node) : null, method: request.method ?? '', path: (request.url ?? '').split('?')[0]! });
  });
  return seen;
}

/** What a node asks for when it looks for work: the job list, or an acquire. */
const looksForWork = (r: Seen) => (r.method === 'POST' && r.path === '/v1/jobs/list') || (r.method === 'GET' && /^\/v1\/jobs\/\d+\/acquire$/.test(r.path));

/** The pk of the node registered as (127.0.0.1, `index`). */
async function nodePk(server: LocalTestServer, index: number): Promise<number> {
  const res = await api(server.url, 'POST', '/v1/nodes/list', { token: server.adminToken, json: {} });
  const node = (res.body as { pk: number; index: number }[]).find((n) => n.index === index);
  if (!node) throw new Error(`no node of index ${index}: ${res.text}`);
  return node.pk;
}

/**
 * Each run appends "<pk> <pid of its script>" to `runs`, writes its pid to an output, then waits until
 * the test opens its gate (a file named after the job), or all gates at its end (`go-all`, or the
 * directory removed): a test that fails leaves no run behind.
 */
function gatedScript(dir: string, runs: string): string {
  return `echo "$UFDL_JOB_PK $$" >> ${runs}\necho "$$" > "$UFDL_OUTPUT_DIR/run.txt"\nwhile [ -d ${dir} ] && [ ! -e ${dir}/go-$UFDL_JOB_PK ] && [ ! -e ${dir}/go-all ]; do sleep 0.05; done\necho done\n`;
}

interface LogLine {
  level: number;
  msg: string;
  added?: { nodeIndex: number }[];
  retired?: number[];
}

/** A server that records its requests, a gated template, and `ufdl-agent run` processes on one directory and TOML file. */
async function setUp(label: string) {
  const server = await startTestServer();
  const seen = recordRequests(server);
  const dir = await tempDir(`ufdl-raise-slots-${label}-`);
  const runs = join(dir, 'runs.txt');
  onTestFinished(() => writeFile(join(dir, 'go-all'), ''));
  const template = await importTemplate(server, shellTemplate(`gated-${label}`, gatedScript(dir, runs)));
  const toml = join(dir, 'agent.toml');
  const config = (slots: number) => writeFile(toml, `[agent]\nslots = ${slots}\npoll_interval = [0.2]\nhardware_interval = 0\nkill_grace = 0.5\n`);

  /** `ufdl-agent run` with `slots`; resolves once it runs. */
  const startAgent = async (slots: number, statusPort = -1) => {
    await config(slots);
    const agent = startCli(['run'], {
      env: serverEnv(server, {
        UFDL_AGENT_CONFIG: toml,
        UFDL_AGENT_WORK_DIR: join(dir, 'work'),
        UFDL_AGENT_STATUS_PORT: String(statusPort),
        UFDL_AGENT_MIN_FREE_DISK: '0',
        UFDL_AGENT_NODE_IP: '127.0.0.1',
        UFDL_AGENT_LOG_FORMAT: 'json',
      }),
      timeoutMs: 240_000,
    });
    onTestFinished(() => {
      agent.child.kill('SIGKILL');
    });
    const log = () =>
      agent
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine);
    const replans = () => log().filter((l) => l.msg.startsWith('slots re-planned'));
    /** Write the TOML file with `count` slots, send SIGHUP, and wait for the slots to be re-planned. */
    const reloadSlots = async (count: number) => {
      const before = replans().length;
      await config(count);
      agent.child.kill('SIGHUP');
      await until(() => replans().length > before, 60_000, `the slots to be re-planned for ${count}`);
      return replans()[before]!;
    };
    await agent.stdoutMatches(/"msg":"agent running"/);
    return { agent, log, reloadSlots };
  };

  /** Two gated jobs on two slots, running: `first` as node 0, `second` as node 1. */
  const twoRuns = async () => {
    const pks = [await createJob(server, template), await createJob(server, template)];
    await until(async () => (await readRuns(runs)).length === 2, 60_000, 'both jobs to run');
    const [p0, p1] = [await nodePk(server, 0), await nodePk(server, 1)];
    const nodes = await Promise.all(pks.map(async (pk) => (await getJob(server, pk)).node));
    expect(nodes.sort(), JSON.stringify(nodes)).toEqual([p0, p1].sort());
    return { p0, p1, pks, asNode0: pks[nodes.indexOf(p0)]!, asNode1: pks[nodes.indexOf(p1)]! };
  };

  const ranJob = async (pk: number) => (await readRuns(runs)).some((l) => l.startsWith(`${pk} `));
  const pidOf = async (pk: number) => (await readRuns(runs)).find((l) => l.startsWith(`${pk} `))!.split(' ')[1];

  /**
   * From request `from` on: `beyond` (a job of node `p1` beyond the plan) ends, and until its finish
   * nothing asks for work as node `p1`; after it, node `p1`'s slot polls, and runs the next job while
   * node 0's slot is busy. Returns that job's pk.
   */
  const nodeFreedByItsJob = async (from: number, p1: number, beyond: number) => {
    await writeFile(join(dir, `go-${beyond}`), '');
    expect((await waitForJob(server, beyond, (j) => j.end_time !== null, 60_000)).error_reason).toBeNull();
    const finished = seen.findIndex((r, i) => i >= from && r.node === p1 && r.method === 'POST' && r.path === `/v1/jobs/${beyond}/finish`);
    expect(finished, 'the finish of the job beyond the plan').toBeGreaterThan(from);
    expect(seen.slice(from, finished).filter((r) => r.node === p1 && looksForWork(r))).toEqual([]);
    await until(() => seen.slice(finished).some((r) => r.node === p1 && looksForWork(r)), 60_000, `a poll as node ${p1} after its job left`);
    const next = await createJob(server, template);
    await until(() => ranJob(next), 60_000, 'the next job to run');
    expect((await getJob(server, next)).node).toBe(p1);
    // Its own run's output: the pid its script wrote.
    expect((await downloadOutput(server, beyond, 'run.txt')).toString().trim()).toBe(await pidOf(beyond));
    return next;
  };

  /** Open every gate left; each job ended without error and ran exactly once. */
  const allRanOnce = async (pks: number[]) => {
    for (const pk of pks) await writeFile(join(dir, `go-${pk}`), '');
    for (const pk of pks) expect((await waitForJob(server, pk, (j) => j.end_time !== null, 60_000)).error_reason).toBeNull();
    expect((await readRuns(runs)).map((line) => Number(line.split(' ')[0])).sort()).toEqual([...pks].sort());
  };

  return { server, seen, dir, template, startAgent, twoRuns, ranJob, nodeFreedByItsJob, allRanOnce };
}

describe('slots raised by SIGHUP while a job runs beyond the plan', () => {
  it("after a SIGHUP with fewer slots: the new slot of the job's node waits for the job, then polls and runs", async () => {
    const t = await setUp('shrunk');
    const statusPort = await freePort();
    const statusUrl = `http://127.0.0.1:${statusPort}`;
    const { agent, log, reloadSlots } = await t.startAgent(2, statusPort);
    const { p0, p1, pks, asNode0, asNode1: beyond } = await t.twoRuns();

    // One slot: the slot of node 1 leaves the plan, its job runs on beyond it.
    expect((await reloadSlots(1)).retired).toHaveLength(1);

    // Two slots again: the new slot registers node 1, which still works `beyond`.
    const raisedAt = t.seen.length;
    expect((await reloadSlots(2)).added!.map((s) => s.nodeIndex)).toEqual([1]);
    // It waits for that job, and says so; with node 0's slot busy too, the agent takes no job: not ready.
    const shown = await cli(['status', '--status-url', statusUrl]);
    expect(shown.stdout, shown.stderr).toMatch(/^slots: 3 \(2 busy, 1 leaving when its job ends, 1 waiting for its node's job in another slot\)$/m);
    expect(shown.stdout).toMatch(new RegExp(`^\\s*\\d+ \\(waiting\\)\\s+-\\s+${p1}\\s+-$`, 'm'));
    const readyz = await fetch(`${statusUrl}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { reasons: string[] }).reasons).toContain("no free slot: 1 slot(s) run a job, 1 wait(s) for its node's job in another slot to end");

    // A new job waits for a slot; node 0's slot frees and takes it: the loop polled after the raise.
    const next = await createJob(t.server, t.template);
    await writeFile(join(t.dir, `go-${asNode0}`), '');
    await until(() => t.ranJob(next), 60_000, 'the new job to run');
    expect((await getJob(t.server, next)).node).toBe(p0);

    const last = await t.nodeFreedByItsJob(raisedAt, p1, beyond);
    await t.allRanOnce([...pks, next, last]);
    expect(log().filter((l) => l.msg.startsWith('start refused'))).toEqual([]);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(0);
  }, 240_000);

  it("after a restart with fewer slots: the new slot of the job's node waits for the job, then polls and runs", async () => {
    const t = await setUp('restarted');
    const first = await t.startAgent(2);
    const { p1, pks, asNode1 } = await t.twoRuns();
    // Killed with both children running; restarted with one slot, node 0's: recovery gives it node 0's
    // job (which keeps it busy until its gate opens), and node 1's job runs on beyond the plan.
    first.agent.child.kill('SIGKILL');
    await first.agent.result;
    const { agent, log, reloadSlots } = await t.startAgent(1);

    // Two slots: the new slot registers node 1, which still works `asNode1`.
    const raisedAt = t.seen.length;
    expect((await reloadSlots(2)).added!.map((s) => s.nodeIndex)).toEqual([1]);
    const last = await t.nodeFreedByItsJob(raisedAt, p1, asNode1);
    await t.allRanOnce([...pks, last]);
    expect(log().filter((l) => l.msg.startsWith('start refused'))).toEqual([]);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(0);
  }, 240_000);
});
