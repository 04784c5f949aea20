/**
 * Scenario 3 (issue 5; docs/ARCHITECTURE.md, "Self-fencing"): network partitions between
 * an agent and the server, through a TCP proxy the test controls (helpers/proxy.ts).
 *
 * 1. Faults shorter than `lost_after` (drop, stall, reset, slow, one after the other, while jobs run
 *    and new ones arrive): every job finishes once the path heals, exactly once at a time, with its
 *    outputs, and the agent is still running.
 * 2. With lost-node recovery on (a server with a small `lost_after` and a fast sweeper), a partition
 *    longer than `lost_after` while agent A runs a job: A fences its child, the server aborts the job,
 *    agent B (which reaches the server directly) runs it to the end, and the run log shows the two
 *    runs one after the other. When the path heals, A's late reports change nothing: the job stays
 *    finished by B with exactly its outputs, and nothing is left held.
 */
import { describe, expect, it } from 'vitest';
import { checkFinishedJobs, checkNothingHeld, jobProblems, report, staleCurrentJobs, waitAllEnded } from './helpers/checks.js';
import { sleep, until } from './helpers/procs.js';
import { TcpProxy, type ProxyMode } from './helpers/proxy.js';
import { Rig } from './helpers/rig.js';
import { concurrentRuns, runLogSummary } from './helpers/runlog.js';
import { Random, scale, seed } from './helpers/scale.js';

const S = scale();

describe('network partitions between an agent and the server', () => {
  it('drop, stall, reset and slow while jobs run: every job finishes once the path heals', async () => {
    const seedValue = seed();
    const rnd = new Random(seedValue);
    const rig = Rig.forTest('partition');
    const server = await rig.startServer();
    const api = rig.admin(server);
    const template = await api.importTemplate(rig.workloadTemplate('partition'));
    const proxy = await TcpProxy.start({ port: server.port });
    try {
      const agent = await rig.startAgent({ name: 'agent', serverUrl: proxy.url, slots: 2, env: { UFDL_AGENT_SERVER_TIMEOUT: '3' } });
      const pks: number[] = [];
      const add = async (n: number) => {
        for (let i = 0; i < n; i++) pks.push(await api.createJob(template, { ticks: { value: rnd.int(3, 12), type: 'int' } }));
      };
      const { jobs, modeMs } = S.partition;
      const modes: ProxyMode[] = ['drop', 'stall', 'reset', 'slow'];
      const perPhase = Math.max(1, Math.floor(jobs / modes.length));
      const phases: string[] = [];
      for (const mode of modes) {
        await add(perPhase);
        // Let the agent pick the new jobs up, then cut the path in the middle of their runs.
        await sleep(rnd.int(300, 900));
        proxy.setMode(mode, 300);
        await sleep(modeMs);
        proxy.setMode('pass');
        phases.push(`${mode} ${modeMs} ms`);
        await sleep(modeMs / 2);
      }
      await add(jobs - pks.length);
      const ended = await waitAllEnded(api, pks, 120_000 + pks.length * 5_000);
      await sleep(1_000);

      const problems = await checkFinishedJobs(api, pks);
      const log = rig.runLog();
      const held = await checkNothingHeld(api, pks);
      console.log(
        `[partition] seed ${seedValue}; ${phases.join(', ')}; ${ended.filter((j) => j.end_time !== null).length}/${pks.length} ended; ${runLogSummary(log)}; proxy ${JSON.stringify(proxy.stats)}`,
      );
      expect(report('jobs not finished as expected', problems)).toBe('jobs not finished as expected: none');
      expect(report('runs of one job at the same time', concurrentRuns(log))).toBe('runs of one job at the same time: none');
      expect(report('held after the end', held)).toBe('held after the end: none');
      expect(agent.proc.alive, `the agent still runs (log ${agent.proc.logFile})`).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  for (const mode of S.partition.lostNodeModes) {
    it(`a ${mode} partition longer than lost_after: the agent fences its child, another agent runs the job, never both at once`, async () => {
      const rig = Rig.forTest(`lost-node-${mode}`);
      // lost_after 4 s; the agent fences at max(lost_after − margin, lost_after / 2) = 2 s of silence
      // and stops its child within kill_grace 0.5 s, before the sweeper (every 0.5 s) can give the job
      // away (the server refreshes last_seen at most once a second, so that can be 3 s after the
      // agent's last answered call, not 4).
      const server = await rig.startServer({ lostAfterSeconds: 4, sweepIntervalSeconds: 0.5 });
      const api = rig.admin(server);
      const template = await api.importTemplate(rig.workloadTemplate(`lost-node-${mode}`));
      const proxy = await TcpProxy.start({ port: server.port });
      try {
        const a = await rig.startAgent({
          name: 'agent-a',
          serverUrl: proxy.url,
          nodeIndex: 0,
          env: { UFDL_AGENT_FENCE_MARGIN: '2.5', UFDL_AGENT_KILL_GRACE: '0.5', UFDL_AGENT_SERVER_TIMEOUT: '2' },
        });
        const pk = await api.createJob(template, { ticks: { value: 25, type: 'int' } }, `lost node (${mode})`);
        await until(() => (rig.runLog().byJob.get(pk)?.[0]?.ticks ?? 0) >= 2, 60_000, `agent A to run job ${pk}`);
        const nodeA = (await api.job(pk)).node;

        proxy.setMode(mode);
        const cutAt = Date.now();
        const b = await rig.startAgent({ name: 'agent-b', serverUrl: server.url, nodeIndex: 10 });
        const [job] = await waitAllEnded(api, [pk], 90_000);
        const partitionS = (Date.now() - cutAt) / 1000;
        const nodeB = (await api.nodes()).find((n) => n.index === 10)?.pk;
        const fenced = a.proc.jsonLines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('SELF-FENCING'));
        const logBeforeHeal = rig.runLog();

        // Heal: A talks to the server again and must not disturb the finished job.
        proxy.setMode('pass');
        // A reports the fenced job once it reaches the server again ("job left this node").
        const aDone = await a.proc
          .waitForLog((l) => l.msg === 'job left this node' && l.job === pk, 60_000)
          .then(
            () => true,
            () => false,
          );
        await sleep(1_000);
        const held = await checkNothingHeld(api, [pk]);
        const stale = await staleCurrentJobs(api);
        const after = await api.job(pk);
        const final = await checkFinishedJobs(api, [pk]);
        const log = rig.runLog();
        const runs = log.byJob.get(pk) ?? [];
        console.log(
          `[lost-node/${mode}] partition ${partitionS.toFixed(1)} s; A fenced: ${fenced}; job node ${nodeA} → ${job?.node} (B = ${nodeB}); runs: ${runs
            .map((r) => `pid ${r.pid} ${r.ended ? 'ended' : `stopped after ${r.ticks} ticks`}`)
            .join(', ')}; stale current_job after the heal: ${stale.length === 0 ? 'none' : stale.join('; ')}; proxy ${JSON.stringify(proxy.stats)}`,
        );

        expect(jobProblems(job!), `job ${pk} when B finished`).toEqual([]);
        expect(job!.node, 'the job was run by agent B').toBe(nodeB);
        expect(fenced, `agent A logged SELF-FENCING (log ${a.proc.logFile})`).toBe(true);
        expect(aDone, `agent A reported the fenced job after the heal (log ${a.proc.logFile})`).toBe(true);
        expect(report('runs of one job at the same time', concurrentRuns(logBeforeHeal))).toBe('runs of one job at the same time: none');
        expect(runs.length, 'two runs: A fenced, B complete').toBe(2);
        // A's finish was lost in the partition; after the heal its clean-up finish clears the pointer.
        expect(stale, 'no node still names a job it no longer holds').toEqual([]);
        expect(runs[0]!.ended, "A's run was stopped before its end").toBe(false);
        expect(runs[1]!.ended, "B's run reached its end").toBe(true);
        expect(report('after the heal', [...final, ...held])).toBe('after the heal: none');
        expect(after.node).toBe(nodeB);
        expect(report('runs of one job at the same time (after the heal)', concurrentRuns(log))).toBe(
          'runs of one job at the same time (after the heal): none',
        );
        expect(a.proc.alive, `agent A still runs (log ${a.proc.logFile})`).toBe(true);
        expect(b.proc.alive, `agent B still runs (log ${b.proc.logFile})`).toBe(true);

        // A is whole again: with B gone, A runs the next job.
        await b.proc.kill('SIGKILL');
        const next = await api.createJob(template, { ticks: { value: 2, type: 'int' } }, 'after the heal');
        const [nextJob] = await waitAllEnded(api, [next], 60_000);
        expect(jobProblems(nextJob!), `job ${next}, created after the heal, run by A (log ${a.proc.logFile})`).toEqual([]);
        expect(nextJob!.node).toBe(nodeA);
      } finally {
        await proxy.close();
      }
    });
  }
});
