/**
 * The journal's lifecycles: every allowed edge is taken, every other pair is refused with an
 * `IllegalStateError` naming the current and the attempted state, and a refused write changes
 * nothing.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IllegalStateError,
  JOB_EDGES,
  JOB_STATES,
  OUTPUT_EDGES,
  OUTPUT_STATES,
  openJournal,
  type Journal,
  type JobState,
  type OutputState,
} from '../../../src/agent/journal/index.js';
import { sharedTempDir } from '../../helpers/temp-dir.js';

const SHA = 'a'.repeat(64);

/** A path through the lifecycle from `acquiring` to each state. */
const PATH_TO: Record<JobState, JobState[]> = {
  acquiring: [],
  acquired: ['acquired'],
  preparing: ['acquired', 'preparing'],
  starting: ['acquired', 'preparing', 'starting'],
  running: ['acquired', 'preparing', 'starting', 'running'],
  uploading: ['acquired', 'preparing', 'starting', 'running', 'uploading'],
  finishing: ['acquired', 'preparing', 'starting', 'running', 'uploading', 'finishing'],
  releasing: ['acquired', 'releasing'],
  done: ['acquired', 'releasing', 'done'],
};

let dir: string;
let journal: Journal;
let nextPk = 1;

function jobIn(state: JobState): number {
  const jobPk = nextPk++;
  journal.beginAcquire({ jobPk, nodePk: 1 });
  for (const step of PATH_TO[state]) journal.transition(jobPk, step);
  expect(journal.get(jobPk)?.state).toBe(state);
  return jobPk;
}

function illegal(fn: () => unknown): IllegalStateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IllegalStateError);
    return err as IllegalStateError;
  }
  throw new Error('expected an IllegalStateError');
}

const journalDir = sharedTempDir('ufdl-journal-states-');

beforeAll(() => {
  dir = journalDir();
  journal = openJournal({ path: join(dir, 'journal.db'), serverUrl: 'http://127.0.0.1:8000' });
});

afterAll(() => {
  journal.close();
});

describe('job lifecycle', () => {
  it('should name every state once, in lifecycle order, with done terminal', () => {
    expect(new Set(JOB_STATES).size).toBe(JOB_STATES.length);
    expect(Object.keys(JOB_EDGES).sort()).toEqual([...JOB_STATES].sort());
    expect(JOB_EDGES.done).toEqual([]);
    // every state can reach done
    for (const state of JOB_STATES) {
      const seen = new Set<JobState>([state]);
      const queue = [state];
      while (queue.length > 0) for (const next of JOB_EDGES[queue.shift()!]) if (!seen.has(next)) seen.add(next), queue.push(next);
      expect(seen.has('done'), `${state} reaches done`).toBe(true);
    }
  });

  const allowed = JOB_STATES.flatMap((from) => JOB_EDGES[from].map((to) => [from, to] as const));
  it.each(allowed)('should allow %s → %s', (from, to) => {
    const jobPk = jobIn(from);
    const before = journal.get(jobPk)!;
    const after = journal.transition(jobPk, to, { lastError: `went ${from} → ${to}` });
    expect(after.state).toBe(to);
    expect(after.lastError).toBe(`went ${from} → ${to}`);
    expect(journal.get(jobPk)).toEqual(after);
    expect(after.stateTimes[to]).toBe(after.stateSince);
    expect(after.runs).toBe(before.runs + (to === 'running' ? 1 : 0));
    expect(journal.history(jobPk).at(-1)).toMatchObject({ from, to, attempt: 1 });
  });

  const forbidden = JOB_STATES.flatMap((from) =>
    JOB_STATES.filter((to) => !JOB_EDGES[from].includes(to)).map((to) => [from, to] as const),
  );
  it.each(forbidden)('should refuse %s → %s, naming both states, and change nothing', (from, to) => {
    const jobPk = jobIn(from);
    const before = journal.get(jobPk)!;
    const historyBefore = journal.history(jobPk);
    const err = illegal(() => journal.transition(jobPk, to, { lastError: 'must not be written', pid: 42 }));
    expect(err).toMatchObject({ machine: 'job', from, to });
    expect(err.message).toContain(`${from} → ${to}`);
    expect(err.message).toContain(`current state ${from}`);
    expect(err.message).toContain(`job ${jobPk}`);
    expect(journal.get(jobPk)).toEqual(before);
    expect(journal.history(jobPk)).toEqual(historyBefore);
  });

  it('should refuse a self-edge and every edge out of done', () => {
    expect(forbidden).toContainEqual(['running', 'running']);
    for (const to of JOB_STATES) expect(forbidden).toContainEqual(['done', to]);
  });

  it.each(JOB_STATES.filter((s) => s !== 'done'))('should refuse a new attempt of a job still %s', (state) => {
    const jobPk = jobIn(state);
    const err = illegal(() => journal.beginAcquire({ jobPk, nodePk: 1 }));
    expect(err).toMatchObject({ from: state, to: 'acquiring' });
    expect(journal.get(jobPk)?.attempts).toBe(1);
  });

  it.each(JOB_STATES.filter((s) => s !== 'done'))('should abandon a job in %s to done with its reason', (state) => {
    const jobPk = jobIn(state);
    const record = journal.abandon(jobPk, 'job 404 on the server');
    expect(record).toMatchObject({ state: 'done', lastError: 'job 404 on the server' });
    expect(journal.history(jobPk).at(-1)).toMatchObject({ from: state, to: 'done', note: 'job 404 on the server' });
  });

  it('should refuse to abandon a job that is already done', () => {
    const jobPk = jobIn('done');
    expect(illegal(() => journal.abandon(jobPk, 'again'))).toMatchObject({ from: 'done', to: 'done' });
  });
});

describe('output upload lifecycle', () => {
  const key = { name: 'model.zip', type: 'BLOB' };
  const pathTo: Record<OutputState, OutputState[]> = {
    pending: [],
    uploading: ['uploading'],
    uploaded: ['uploading', 'uploaded'],
    failed: ['uploading', 'failed'],
  };

  function outputIn(state: OutputState): number {
    const jobPk = jobIn('uploading');
    journal.registerOutput(jobPk, { ...key, path: '/tmp/model.zip', size: 3, sha256: SHA });
    for (const step of pathTo[state]) journal.markOutput(jobPk, key, step, { error: 'boom' });
    expect(journal.outputs(jobPk)[0]?.state).toBe(state);
    return jobPk;
  }

  const allowed = OUTPUT_STATES.flatMap((from) => OUTPUT_EDGES[from].map((to) => [from, to] as const));
  it.each(allowed)('should allow %s → %s', (from, to) => {
    const jobPk = outputIn(from);
    const before = journal.outputs(jobPk)[0]!;
    const after = journal.markOutput(jobPk, key, to, { error: 'connection reset' });
    expect(after.state).toBe(to);
    expect(after.attempts).toBe(before.attempts + (to === 'uploading' ? 1 : 0));
    if (to === 'failed') expect(after.lastError).toBe('connection reset');
    if (to === 'uploaded') expect(after.lastError).toBeNull();
    expect(journal.outputs(jobPk)).toEqual([after]);
  });

  const forbidden = OUTPUT_STATES.flatMap((from) =>
    OUTPUT_STATES.filter((to) => !OUTPUT_EDGES[from].includes(to)).map((to) => [from, to] as const),
  );
  it.each(forbidden)('should refuse %s → %s, naming both states', (from, to) => {
    const jobPk = outputIn(from);
    const before = journal.outputs(jobPk);
    const err = illegal(() => journal.markOutput(jobPk, key, to));
    expect(err).toMatchObject({ machine: 'output', from, to });
    expect(err.message).toContain(`${from} → ${to}`);
    expect(err.message).toContain('model.zip');
    expect(journal.outputs(jobPk)).toEqual(before);
  });
});
