import { describe, expect, it } from 'vitest';
import {
  decideRecovery,
  decideUnknownCurrentJob,
  serverView,
  NODE_RESTARTED_ERROR,
  type RecoveryFacts,
} from '../../../src/agent/start/recovery-rules.js';
import { jobJson } from '../../helpers/job-json.js';

const SELF = 7;
const OTHER = 8;

const job = jobJson;

const T = '2024-01-01T00:00:01Z';
const created = (node: number | null) => job({ node });
const started = (node: number) => job({ node, start_time: T });
const cancelled = (node: number) => job({ node, start_time: T, error_reason: 'Cancelled', is_cancelled: true });
const finished = (node: number) => job({ node, start_time: T, end_time: T });
const errored = (node: number) => job({ node, start_time: T, end_time: T, error_reason: 'boom' });

function facts(over: Partial<RecoveryFacts>): RecoveryFacts {
  return {
    state: 'running',
    child: 'none',
    job: started(SELF),
    selfPk: SELF,
    currentJob: 1,
    restarts: 0,
    maxRestarts: 3,
    hasFinishPayload: false,
    ...over,
  };
}

describe('serverView()', () => {
  it('tells every phase apart relative to this node', () => {
    expect(serverView(null, SELF)).toBe('missing');
    expect(serverView(job({ deletion_time: T }), SELF)).toBe('missing');
    expect(serverView(created(SELF), SELF)).toBe('acquired-by-us');
    expect(serverView(created(null), SELF)).toBe('not-ours');
    expect(serverView(created(OTHER), SELF)).toBe('not-ours');
    expect(serverView(started(SELF), SELF)).toBe('running-by-us');
    expect(serverView(started(OTHER), SELF)).toBe('reassigned');
    expect(serverView(cancelled(SELF), SELF)).toBe('cancelled');
    expect(serverView(finished(SELF), SELF)).toBe('ended-by-us');
    expect(serverView(errored(OTHER), SELF)).toBe('reassigned');
  });
});

describe('decideRecovery(): acquired but not started', () => {
  for (const state of ['acquiring', 'acquired', 'preparing', 'starting'] as const) {
    it(`releases a job left in ${state} that the server shows held by us`, () => {
      expect(decideRecovery(facts({ state, job: created(SELF), currentJob: null })).kind).toBe('release');
    });
  }

  it('forgets an acquire that did not reach the server', () => {
    expect(decideRecovery(facts({ state: 'acquiring', job: created(null), currentJob: null })).kind).toBe('forget');
  });

  it('forgets a job another node acquired (lost race)', () => {
    expect(decideRecovery(facts({ state: 'acquired', job: created(OTHER), currentJob: null })).kind).toBe('forget');
  });

  it('forgets a job that no longer exists', () => {
    expect(decideRecovery(facts({ state: 'preparing', job: null })).kind).toBe('forget');
  });
});

describe('decideRecovery(): starting', () => {
  it('treats a job the server shows started by us as running (no child: requeue)', () => {
    const action = decideRecovery(facts({ state: 'starting', job: started(SELF), child: 'none' }));
    expect(action).toMatchObject({ kind: 'requeue', error: NODE_RESTARTED_ERROR });
  });

  it('re-attaches when the child of a starting job still runs', () => {
    expect(decideRecovery(facts({ state: 'starting', job: started(SELF), child: 'alive' })).kind).toBe('reattach');
  });
});

describe('decideRecovery(): running', () => {
  it('re-attaches to a child that still runs', () => {
    expect(decideRecovery(facts({ child: 'alive' })).kind).toBe('reattach');
  });

  it('collects a child that exited with a recorded status instead of running it again', () => {
    expect(decideRecovery(facts({ child: 'exited' })).kind).toBe('collect');
  });

  it('requeues a job whose child is gone without a status', () => {
    expect(decideRecovery(facts({ child: 'gone', restarts: 0 })).kind).toBe('requeue');
    expect(decideRecovery(facts({ child: 'gone', restarts: 1 })).kind).toBe('requeue');
  });

  it('fails a job that crashed the node max_restarts times (poison protection)', () => {
    const action = decideRecovery(facts({ child: 'gone', restarts: 2, maxRestarts: 3 }));
    expect(action.kind).toBe('fail');
    if (action.kind === 'fail') expect(action.error).toMatch(/3 times/);
  });

  it('cleans up (silent finish) a job cancelled while the agent was down, stopping a live child', () => {
    expect(decideRecovery(facts({ job: cancelled(SELF), child: 'alive' }))).toMatchObject({ kind: 'cleanup', stopChild: true });
    expect(decideRecovery(facts({ job: cancelled(SELF), child: 'exited' }))).toMatchObject({ kind: 'cleanup', stopChild: false });
  });

  it('cleans up a job aborted by lost-node recovery while this node still holds it as current_job', () => {
    expect(decideRecovery(facts({ job: created(null), currentJob: 1, child: 'alive' }))).toMatchObject({ kind: 'cleanup', stopChild: true });
  });

  it('forgets a job aborted and already running on another node when current_job was cleared', () => {
    expect(decideRecovery(facts({ job: started(OTHER), currentJob: null, child: 'alive' }))).toMatchObject({ kind: 'forget', stopChild: true });
  });

  it('releases a job that was reset but not released', () => {
    expect(decideRecovery(facts({ job: created(SELF), currentJob: null })).kind).toBe('release');
  });
});

describe('decideRecovery(): uploading, finishing, releasing', () => {
  it('resumes the uploads of a running job', () => {
    expect(decideRecovery(facts({ state: 'uploading', child: 'exited' })).kind).toBe('resume-upload');
  });

  it('re-delivers a recorded finish', () => {
    expect(decideRecovery(facts({ state: 'finishing', hasFinishPayload: true })).kind).toBe('refinish');
  });

  it('delivers the finish the agent decided when it stopped the child, before finishing, whatever its exit', () => {
    // Shutdown or fencing journals its requeue as the stop begins: the stopped run is not the job's failure.
    for (const child of ['exited', 'alive', 'gone'] as const) {
      expect(decideRecovery(facts({ state: 'running', child, hasFinishPayload: true })).kind).toBe('refinish');
    }
    expect(decideRecovery(facts({ state: 'uploading', child: 'exited', hasFinishPayload: true })).kind).toBe('refinish');
    // Cancelled meanwhile: the server's view still wins.
    expect(decideRecovery(facts({ state: 'running', child: 'exited', job: cancelled(SELF), hasFinishPayload: true })).kind).toBe('cleanup');
  });

  it('continues with release when the finish was delivered', () => {
    expect(decideRecovery(facts({ state: 'finishing', job: errored(SELF), currentJob: null })).kind).toBe('rerelease');
  });

  it('marks done a finish the server shows already delivered (finished)', () => {
    expect(decideRecovery(facts({ state: 'finishing', job: finished(SELF), currentJob: null })).kind).toBe('rerelease');
  });

  it('finishes silently a job cancelled before the finish landed', () => {
    expect(decideRecovery(facts({ state: 'finishing', job: cancelled(SELF), hasFinishPayload: true })).kind).toBe('cleanup');
  });

  it('repeats reset and release for a job left in releasing', () => {
    expect(decideRecovery(facts({ state: 'releasing', job: errored(SELF), currentJob: null })).kind).toBe('rerelease');
    expect(decideRecovery(facts({ state: 'releasing', job: created(SELF), currentJob: null })).kind).toBe('rerelease');
  });

  it('forgets a releasing job that is no longer ours', () => {
    expect(decideRecovery(facts({ state: 'releasing', job: created(null), currentJob: null })).kind).toBe('forget');
  });
});

describe('decideUnknownCurrentJob()', () => {
  it('names a current_job the journal does not know', () => {
    expect(decideUnknownCurrentJob(5, new Set([1, 2]))).toBe(5);
    expect(decideUnknownCurrentJob(1, new Set([1, 2]))).toBeNull();
    expect(decideUnknownCurrentJob(null, new Set())).toBeNull();
  });
});
