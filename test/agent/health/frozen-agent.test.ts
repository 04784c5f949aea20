/**
 * A frozen agent's job never runs twice at once (issue 9, item 2). A real agent process runs a job;
 * it is stopped with SIGSTOP (what a VM pause, a swap storm or a blocked event loop look like to the
 * server) for longer than the server's `lost_after`; the server gives the job to a second real agent.
 * The first agent's child must have been stopped by its wrapper — the agent could not do it — before
 * the second one started it. After SIGCONT the first agent notices and reports nothing of the stale
 * run: no progress, no outputs, no success.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { groupMembers } from '../../../src/agent/child/proc.js';
import { stopGroup } from '../../../src/agent/child/stop-group.js';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, readRuns, shellTemplate, spawnAgent, startTestAgent, until, waitForJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

/** The first run ticks until it is killed; a later run ticks a few times and succeeds. */
function tickingScript(runs: string): string {
  return [
    `if [ -e '${runs}.first' ]; then ticks=5; else : > '${runs}.first'; ticks=100000; fi`,
    'i=0',
    'while [ "$i" -lt "$ticks" ]; do',
    `  printf '%s %s\\n' "$UFDL_JOB_DIR" "$(date +%s%N)" >> '${runs}'`,
    '  echo "UFDL-PROGRESS 0.5"',
    '  i=$((i + 1))',
    '  sleep 0.1',
    'done',
  ].join('\n');
}

/** The ticks of the run in `jobDir`, in ns since the epoch. */
function ticksOf(lines: string[], jobDir: string): bigint[] {
  return lines.filter((l) => l.startsWith(`${jobDir} `)).map((l) => BigInt(l.slice(jobDir.length + 1)));
}

describe('an agent frozen with SIGSTOP past lost_after', () => {
  it('has its child stopped by the wrapper before another agent runs the job, and reports nothing stale after SIGCONT', { timeout: 120_000 }, async () => {
    const server = await startTestServer({ lostAfterSeconds: 6, sweepIntervalSeconds: 0.5 });
    const base = await tempDir('ufdl-frozen-');
    const runs = join(base, 'runs');
    const template = await importTemplate(server, shellTemplate('ticking', tickingScript(runs)));

    // fence_margin 2.5 s: the lease lapses 3.5 s after the last answer, the server gives up at 6 s.
    const optionsA = fastAgentOptions(server, join(base, 'a'), { nodeIndex: 0, fenceMarginMs: 2_500, killGraceMs: 500, heartbeatIntervalMs: 300 });
    const a = spawnAgent(optionsA);
    const pk = await createJob(server, template);
    const started = await a.waitForLog((l) => l.job === pk && l.msg === 'child started', 30_000);
    const wrapperA = started.pid as number;
    // Whatever happens, nothing of the first run outlives the test (a frozen agent cannot stop it).
    onTestFinished(() => stopGroup(wrapperA, { graceMs: 200 }).then(() => undefined, () => undefined));
    const dirA = jobDirPaths(optionsA.workDir!, server.url, pk).root;
    await until(async () => ticksOf(await readRuns(runs), dirA).length >= 3, 20_000, "the first agent's child to tick");
    const nodeA = (await waitForJob(server, pk, (j) => j.node !== null)).node;

    process.kill(a.child.pid!, 'SIGSTOP');
    onTestFinished(() => {
      try {
        process.kill(a.child.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
    });
    const b = await startTestAgent(server, { nodeIndex: 1 });
    const dirB = jobDirPaths(b.options.workDir!, server.url, pk).root;

    // The server aborts the job of the silent node and the second agent starts it.
    await until(async () => ticksOf(await readRuns(runs), dirB).length > 0, 60_000, 'the second agent to run the job');
    // The frozen agent cannot reap its child, but nothing of the job's group may still run.
    expect(groupMembers(wrapperA).map((p) => p.pid)).toEqual([]);
    const lines = await readRuns(runs);
    const lastOfA = ticksOf(lines, dirA).at(-1)!;
    const firstOfB = ticksOf(lines, dirB)[0]!;
    expect(lastOfA < firstOfB, `the first run ticked until ${lastOfA}, the second began at ${firstOfB}`).toBe(true);
    expect(existsSync(join(dirA, 'fenced'))).toBe(true);
    expect(await readFile(join(dirA, 'console.log'), 'utf8')).toContain('the agent did not renew the job lease in time');

    const done = await waitForJob(server, pk, ended, 60_000);
    expect(done.error_reason).toBeNull();
    expect(done.node).not.toBe(nodeA);

    // SIGCONT: the first agent learns that its child was fenced and lets the job go.
    const resumedAt = a.lines().length;
    process.kill(a.child.pid!, 'SIGCONT');
    const left = await a.waitForLog((l) => l.job === pk && l.msg === 'job left this node', 30_000);
    expect(['fenced', 'lost']).toContain(left.outcome);
    const after = a.lines().slice(resumedAt).filter((l) => l.job === pk);
    // It learns from the lapsed lease (or from the wrapper's `fenced` file) that the run was fenced.
    expect(after.some((l) => /lease .*lapsed/.test(String(l.msg)))).toBe(true);
    expect(after.filter((l) => l.msg === 'progress report failed' || /upload/i.test(String(l.msg)))).toEqual([]);
    const final = (await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).body;
    expect(final.error_reason).toBeNull();
    expect(final.node).toBe(done.node);
    const log = (await fetch(`${server.url}/v1/jobs/${pk}/outputs/log/BLOB`, { headers: { authorization: `Bearer ${server.adminToken}` } }).then((r) => r.text()));
    expect(log).not.toContain('the agent did not renew');
    a.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
  });
});
