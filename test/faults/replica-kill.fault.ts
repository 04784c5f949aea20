/**
 * Scenario 6 (several server addresses): two `ufdl-agent serve` replicas on one data directory, two
 * agents (two slots each) given both addresses in opposite orders, and a queue of short jobs. While
 * the jobs run, one replica at a time is SIGKILLed and started again a moment later on the same port,
 * so every agent loses the replica it talks to, mid-call, several times, and fails back to its first
 * address once it answers again. Checked: every job finished successfully with exactly its outputs,
 * one complete run per job and never two at once, nothing held, both agents alive and each saying
 * that it switched. Twice: replicas on one SQLite data directory, and replicas on one PostgreSQL
 * database (a throw-away cluster) sharing the data directory for outputs.
 */
import { expect, it } from 'vitest';
import { startPgCluster } from '../helpers/postgres.js';
import { checkFinishedJobs, checkNothingHeld, expectEachJobOnce, waitAllEnded } from './helpers/checks.js';
import { Rig, type ServerHandle } from './helpers/rig.js';
import { runLogSummary, ticksParam } from './helpers/runlog.js';
import { Random, scale, seed } from './helpers/scale.js';

const S = scale();

it(`server replicas SIGKILLed ${S.replicaKill.kills} times in turn under two agents given both: each job exactly once`, async () => {
  await replicaKill('replica-kill', undefined);
});

it(`on PostgreSQL: replicas SIGKILLed ${S.replicaKill.kills} times in turn under two agents given both: each job exactly once`, async () => {
  const cluster = await startPgCluster();
  try {
    await replicaKill('replica-kill-pg', await cluster.createDatabase('replica_kill'));
  } finally {
    await cluster.stop();
  }
});

async function replicaKill(name: string, databaseUrl: string | undefined): Promise<void> {
  const seedValue = seed();
  const rnd = new Random(seedValue);
  const rig = Rig.forTest(name);
  const t0 = Date.now();
  const database = databaseUrl === undefined ? {} : { databaseUrl };
  const replicas: ServerHandle[] = [await rig.startServer({ logName: 'server-a', ...database })];
  replicas.push(await rig.startServer({ dataDir: replicas[0]!.dataDir, logName: 'server-b', ...database }));
  const api = rig.admin(replicas[0]!);
  const template = await api.importTemplate(rig.workloadTemplate('replica-kill'));

  const pks: number[] = [];
  for (let i = 0; i < S.replicaKill.jobs; i++) pks.push(await api.createJob(template, ticksParam(rnd.int(0, S.replicaKill.maxTicks))));
  const [a, b] = replicas.map((r) => r.url) as [string, string];
  const env = { UFDL_AGENT_SERVER_FAILBACK_AFTER: '1' };
  const agents = await Promise.all([
    rig.startAgent({ name: 'agent-ab', serverUrl: `${a},${b}`, slots: 2, nodeIndex: 0, env }),
    rig.startAgent({ name: 'agent-ba', serverUrl: `${b},${a}`, slots: 2, nodeIndex: 10, env }),
  ]);

  for (let k = 0; k < S.replicaKill.kills; k++) {
    await rig.pause(rnd.int(800, 2500));
    const i = k % 2;
    await replicas[i]!.proc.kill('SIGKILL');
    await rig.pause(rnd.int(300, 1500));
    replicas[i] = await rig.startServer(replicas[i]!.spec);
  }

  const survivor = rig.admin(replicas[0]!);
  await waitAllEnded(survivor, pks, Math.max(120_000, S.replicaKill.jobs * 3_000));
  const elapsedS = (Date.now() - t0) / 1000;
  const problems = await checkFinishedJobs(survivor, pks);
  const log = rig.runLog();
  const held = await checkNothingHeld(survivor, pks);
  const switches = agents.map((agent) => agent.proc.jsonLines().filter((l) => l.msg === 'server address failed; switching to the next').length);
  console.log(`[${name}] seed ${seedValue}; ${pks.length} jobs in ${elapsedS.toFixed(1)} s; switches per agent ${switches.join(' / ')}; ${runLogSummary(log)}`);

  expectEachJobOnce({ log, pks, finishedProblems: problems, held, agents });
  // Each agent lost the replica it talked to at least once (the first kill hits agent-ab's first address).
  expect(switches[0], 'switches of agent-ab').toBeGreaterThan(0);
}
