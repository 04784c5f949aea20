/**
 * The campaign's size knob and its seeded randomness.
 *
 * `UFDL_FAULTS_SCALE=ci` (default): the bounded form CI runs — the whole campaign well under five
 * minutes on a loaded 2-core machine. `UFDL_FAULTS_SCALE=full`: the numbers of issue 5.
 *
 * `UFDL_FAULTS_SEED=<n>` replays the random choices of a run (which fail points, which moments, which
 * bad requests); each scenario prints the seed it used. Timings on a real machine still differ, so a
 * replay explores the same choices, not necessarily the same interleavings.
 */

export type ScaleName = 'ci' | 'full';

export interface Scale {
  name: ScaleName;
  /** Scenario 1: SIGKILLs of the agent in a row, and the workload they interrupt. */
  agentKill: { kills: number; jobs: number; slots: number; maxTicks: number; failPointSample: number };
  /** Scenario 2: SIGKILLs of the server under lifecycle load. */
  serverKill: { kills: number; nodes: number; loadBeforeKillMs: [number, number] };
  /** Scenario 3: each proxy mode held this long while jobs run; lost-node variants. */
  partition: { jobs: number; modeMs: number; lostNodeModes: ('drop' | 'stall')[] };
  /** Scenario 4: three agents, one queue. */
  threeAgents: { jobs: number; slots: number };
  /** Scenario 5: the bad-input storm. */
  storm: { durationMs: number; jobs: number; concurrency: number };
  /** Scenario 6: server replicas SIGKILLed in turn under agents given every address. */
  replicaKill: { kills: number; jobs: number; maxTicks: number };
}

const SCALES: Record<ScaleName, Scale> = {
  ci: {
    name: 'ci',
    agentKill: { kills: 10, jobs: 12, slots: 2, maxTicks: 10, failPointSample: 3 },
    serverKill: { kills: 2, nodes: 10, loadBeforeKillMs: [2000, 4000] },
    partition: { jobs: 6, modeMs: 2000, lostNodeModes: ['drop'] },
    threeAgents: { jobs: 150, slots: 2 },
    storm: { durationMs: 20_000, jobs: 12, concurrency: 4 },
    replicaKill: { kills: 4, jobs: 24, maxTicks: 10 },
  },
  full: {
    name: 'full',
    agentKill: { kills: 50, jobs: 40, slots: 2, maxTicks: 12, failPointSample: 0 },
    serverKill: { kills: 10, nodes: 50, loadBeforeKillMs: [2000, 6000] },
    partition: { jobs: 12, modeMs: 8000, lostNodeModes: ['drop', 'stall'] },
    threeAgents: { jobs: 1000, slots: 2 },
    storm: { durationMs: 120_000, jobs: 60, concurrency: 8 },
    replicaKill: { kills: 16, jobs: 120, maxTicks: 12 },
  },
};

export function scale(): Scale {
  const name = (process.env.UFDL_FAULTS_SCALE ?? 'ci').trim() || 'ci';
  if (name !== 'ci' && name !== 'full') throw new Error(`UFDL_FAULTS_SCALE must be 'ci' or 'full', got ${JSON.stringify(name)}`);
  return SCALES[name];
}

/** A seed for this run: `UFDL_FAULTS_SEED`, else a fresh one (printed by the scenario). */
export function seed(): number {
  const raw = process.env.UFDL_FAULTS_SEED;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new Error(`UFDL_FAULTS_SEED must be an integer, got ${JSON.stringify(raw)}`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** A small seeded PRNG (mulberry32). */
export class Random {
  #state: number;

  constructor(seedValue: number) {
    this.#state = seedValue >>> 0;
  }

  /** In [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}
