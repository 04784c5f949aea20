/**
 * Scenario 4 (issue 5): three agents on one queue of short jobs — each job runs exactly once.
 *
 * Three `ufdl-agent run` processes (two slots each, distinct node indexes) race for one queue on one
 * `ufdl-agent serve`. Half the jobs exist before the agents start (a full queue at once), the rest are
 * created while they work (wake-up races). Checked: every job finished successfully with exactly its
 * outputs, the run log shows exactly one complete run per job and no two runs at once, and no node or
 * job is left held.
 */
import { it } from 'vitest';
import { checkFinishedJobs, checkNothingHeld, expectEachJobOnce, staleCurrentJobs, waitAllEnded } from './helpers/checks.js';
import { Rig } from './helpers/rig.js';
import { runLogSummary } from './helpers/runlog.js';
import { scale } from './helpers/scale.js';

const S = scale();

it(`three agents on one queue of ${S.threeAgents.jobs} short jobs: each job exactly once`, async () => {
  const rig = Rig.forTest('three-agents');
  const t0 = Date.now();
  const server = await rig.startServer();
  const api = rig.admin(server);
  const template = await api.importTemplate(rig.workloadTemplate('three-agents'));
  const { jobs: total, slots } = S.threeAgents;

  const pks: number[] = [];
  const createBatch = async (n: number) => {
    for (let i = 0; i < n; i++) pks.push(await api.createJob(template, { ticks: { value: 0, type: 'int' } }));
  };
  await createBatch(Math.floor(total / 2));

  const agents = await Promise.all(
    [0, 1, 2].map((i) => rig.startAgent({ name: `agent-${i}`, serverUrl: server.url, slots, nodeIndex: i * 10 })),
  );
  await createBatch(total - pks.length);

  const jobs = await waitAllEnded(api, pks, Math.max(120_000, total * 1_500));
  const elapsedS = (Date.now() - t0) / 1000;

  const problems = await checkFinishedJobs(api, pks, { downloadEvery: S.name === 'full' ? 5 : 1 });
  const log = rig.runLog();
  const held = await checkNothingHeld(api, pks);

  const byNode = new Map<number | null, number>();
  for (const job of jobs) byNode.set(job.node, (byNode.get(job.node) ?? 0) + 1);
  const nodes = await api.nodes();
  const perAgent = [0, 1, 2].map((i) =>
    nodes.filter((n) => n.index >= i * 10 && n.index < i * 10 + 10).reduce((sum, n) => sum + (byNode.get(n.pk) ?? 0), 0),
  );
  const stale = await staleCurrentJobs(api);
  console.log(
    `[three-agents] ${total} jobs in ${elapsedS.toFixed(1)} s; jobs per agent ${perAgent.join(' / ')}; ${runLogSummary(log)}; stale current_job: ${stale.length === 0 ? 'none' : stale.join('; ')}`,
  );

  expectEachJobOnce({ log, pks, finishedProblems: problems, held, agents });
});
