/**
 * The job state machine over real HTTP: each transition's success
 * path and each check, in the reference's order, plus the clean-up paths of docs/COMPATIBILITY.md and the
 * regressions B2, B4, B8, B10, B11.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';

const START = { send_notification: 'email' };

async function setup(): Promise<{ f: Fixtures; node: number; other: number; job: number }> {
  const f = await startWithFixtures();
  return { f, node: f.node(), other: f.node(), job: f.job({ description: 'lifecycle' }) };
}

describe('acquire', () => {
  it('gives the job to the node and says so in `node`', async () => {
    const { f, node, job } = await setup();
    const res = await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pk: job, node, start_time: null, is_cancelled: false, description: 'lifecycle' });
    expect(f.jobRow(job)?.node).toBe(node);
  });

  it('is a no-op success for the node that already holds the job, even when finished', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} })).status).toBe(200);
    const again = await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect(again.status).toBe(200);
    expect(again.body.node).toBe(node);
  });

  it('refuses a job another node holds with 406', async () => {
    const { f, node, other, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const res = await f.call('GET', `/v1/jobs/${job}/acquire`, { node: other });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe(`Attempted to acquire job #${job} that has already been acquired`);
    expect(f.jobRow(job)?.node).toBe(node);
  });

  it('refuses an unheld finalised job with 406', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    f.db.prepare('UPDATE jobs SET node = NULL WHERE pk = ?').run(job);
    const res = await f.call('GET', `/v1/jobs/${job}/acquire`, { node: other });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/illegal phase-transition.*CANCELLED: acquire\nJob has already been finalised/s);
  });

  it('needs a Node-Id (403 for an admin without one), a token (401), and a valid Node-Id (400)', async () => {
    const { f, job } = await setup();
    const noNode = await f.call('GET', `/v1/jobs/${job}/acquire`);
    expect(noNode.status).toBe(403);
    expect(noNode.body.detail).toMatch(/Node-Id/);
    const anonymous = await f.call('GET', `/v1/jobs/${job}/acquire`, { as: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ detail: 'Authentication credentials were not provided.' });
    const badNode = await f.call('GET', `/v1/jobs/${job}/acquire`, { node: 999 });
    expect(badNode.status).toBe(400);
    expect(badNode.body.detail).toBe("Bad Node-Id header '999': No node with this primary-key");
  });

  it('answers 404 for an unknown job, and for a pk that is not digits', async () => {
    const { f, node } = await setup();
    const unknown = await f.call('GET', '/v1/jobs/424242/acquire', { node });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Not found.' });
    expect((await f.call('GET', '/v1/jobs/abc/acquire', { node })).status).toBe(404);
  });

  it('acquires on HEAD too, as the reference does', async () => {
    const { f, node, job } = await setup();
    const res = await f.call('HEAD', `/v1/jobs/${job}/acquire`, { node });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(f.jobRow(job)?.node).toBe(node);
  });

  it("refuses a node that another user registered (B13), with the job left alone", async () => {
    const { f, job } = await setup();
    const alice = await f.user();
    const bob = await f.user();
    const alicesNode = f.node(alice.pk);
    const res = await f.call('GET', `/v1/jobs/${job}/acquire`, { as: bob, node: alicesNode });
    expect(res.status).toBe(403);
    expect(f.jobRow(job)?.node).toBeNull();
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { as: alice, node: alicesNode })).status).toBe(200);
  });
});

describe('release', () => {
  it('unassigns a CREATED job', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const res = await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    expect(res.status).toBe(200);
    expect(res.body.node).toBeNull();
  });

  it('unassigns an ERRORED job, which another node may then acquire', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, send_notification: 'email', error: 'boom' } });
    expect((await f.call('DELETE', `/v1/jobs/${job}/release`, { node })).body.node).toBeNull();
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { node: other })).status).toBe(200);
  });

  it('is 403 for a node that neither holds nor works the job (including a repeat release)', async () => {
    const { f, node, other, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await f.call('DELETE', `/v1/jobs/${job}/release`, { node: other })).status).toBe(403);
    await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    expect((await f.call('DELETE', `/v1/jobs/${job}/release`, { node })).status).toBe(403);
  });

  it('B2: refuses the node that is working the job with 406 JSON, not a 500', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const res = await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/is working job .*finish it/);
    expect(f.jobRow(job)?.node).toBe(node);
  });

  it('refuses a FINISHED job with 406', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    const res = await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/FINISHED: release\nCan't release a started or finalised job/);
  });

  it('B8: by a node whose current_job is stale after an abort, clears it and succeeds without touching the job', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/abort`);
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node: other });
    const res = await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    expect(res.status).toBe(200);
    expect(res.body.node).toBe(other);
    expect(f.nodeRow(node).current_job).toBeNull();
  });
});

describe('start', () => {
  it('sets start_time and the node’s current_job', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const res = await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect(res.status).toBe(200);
    expect(res.body.start_time).toEqual(expect.any(String));
    expect(res.body.end_time).toBeNull();
    expect(f.nodeRow(node).current_job).toBe(job);
  });

  it('accepts a body without send_notification, or no body at all (liberal)', async () => {
    const { f, node, job } = await setup();
    const second = f.job();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: {} })).status).toBe(200);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    await f.call('GET', `/v1/jobs/${second}/acquire`, { node });
    expect((await f.call('POST', `/v1/jobs/${second}/start`, { node })).status).toBe(200);
  });

  it('rejects a non-string send_notification and a non-object body with 400', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const bad = await f.call('POST', `/v1/jobs/${job}/start`, { node, json: { send_notification: 3 } });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/send_notification/);
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: [1] })).status).toBe(400);
    expect(f.jobRow(job)?.start_time).toBeNull();
  });

  it('is 403 before the node acquired the job', async () => {
    const { f, node, job } = await setup();
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START })).status).toBe(403);
  });

  it('refuses a second start of the same job (node busy) and a start while working another job', async () => {
    const { f, node, job } = await setup();
    const second = f.job();
    await f.startAs(node, job);
    const twice = await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect(twice.status).toBe(406);
    expect(twice.body.detail).toBe('Attempted to start a job with another already in progress');
    await f.call('GET', `/v1/jobs/${second}/acquire`, { node });
    expect((await f.call('POST', `/v1/jobs/${second}/start`, { node, json: START })).status).toBe(406);
  });

  it('refuses a job that is not CREATED with 406', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    const res = await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/ERRORED: start\nJob already started/);
  });

  it('B8: a stale current_job (its job aborted away) does not block the next start', async () => {
    const { f, node, job } = await setup();
    const next = f.job();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/abort`);
    expect(f.nodeRow(node).current_job).toBe(job);
    await f.call('GET', `/v1/jobs/${next}/acquire`, { node });
    const res = await f.call('POST', `/v1/jobs/${next}/start`, { node, json: START });
    expect(res.status).toBe(200);
    expect(f.nodeRow(node).current_job).toBe(next);
  });
});

describe('progress', () => {
  it('B10: accepts any decimal in [0, 1] and stores it', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    for (const [segment, value] of [['0', 0], ['0.25', 0.25], ['1e-3', 0.001], ['.5', 0.5], ['1', 1], ['1.0', 1]] as const) {
      const res = await f.call('POST', `/v1/jobs/${job}/progress/${segment}`, { node, json: {} });
      expect(res.status, segment).toBe(200);
      expect(f.jobRow(job)?.progress_amount).toBe(value);
    }
  });

  it('B10: rejects values outside [0, 1] and non-decimals with 400', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    for (const segment of ['1.5', '-0.1', '0x5', '0,5', 'abc', 'NaN', 'Infinity']) {
      const res = await f.call('POST', `/v1/jobs/${job}/progress/${segment}`, { node, json: {} });
      expect(res.status, segment).toBe(400);
      expect(res.body.detail).toMatch(/progress must be a decimal number in \[0\.0, 1\.0\]/);
    }
  });

  it('B11: accepts any JSON object body, including keys named node and progress, and no body', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    expect((await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { node: 1, progress: 'x', nested: { a: [1] } } })).status).toBe(200);
    expect((await f.call('POST', `/v1/jobs/${job}/progress/0.6`, { node })).status).toBe(200);
  });

  it('B11: rejects a body that is not an object with 400', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    for (const json of [[1, 2], 'text', 3, null]) {
      const res = await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.detail).toBe('The progress body must be a JSON object');
    }
  });

  it('B2: a node that holds but has not started the job gets 406 UFDL_ERR_JOB_NOT_WORKING, not a 500', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const res = await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: {} });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/is not working job/);
  });

  it('is 406 once the job was cancelled (the worker’s cue to check is_cancelled)', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    const res = await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: {} });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/CANCELLED: progress\nCan only progress from the STARTED phase/);
  });

  it('is 403 for a node that does not hold the job', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    expect((await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node: other, json: {} })).status).toBe(403);
  });
});

describe('finish', () => {
  it('without error → FINISHED, node kept, current_job cleared', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const res = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, send_notification: 'email' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ node, error_reason: null, is_cancelled: false });
    expect(res.body.end_time).toEqual(expect.any(String));
    expect(f.nodeRow(node).current_job).toBeNull();
  });

  it('with error → ERRORED with that error_reason', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const res = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, send_notification: 'email', error: 'it broke' } });
    expect(res.status).toBe(200);
    expect(res.body.error_reason).toBe('it broke');
    expect(res.body.end_time).toEqual(expect.any(String));
  });

  it('keeps an error of any length (a verbose job’s last lines of output), on every store', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    // 12,000 characters that do not compress: more than a PostgreSQL index entry can hold.
    const error = `it broke:\n${randomBytes(9000).toString('base64')}`;
    const res = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, error } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.error_reason).toBe(error);
    // The reset that follows takes it back to the queue, where the poll finds it.
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(200);
    expect((await f.call('DELETE', `/v1/jobs/${job}/release`, { node })).status).toBe(200);
    const queue = await f.call('POST', '/v1/jobs/list', { json: pollFilter() });
    expect(queue.body.map((j: { pk: number }) => j.pk)).toEqual([job]);
  });

  it('rejects error: null and a non-boolean success with 400, leaving the job STARTED', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const nullError = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: null } });
    expect(nullError.status).toBe(400);
    expect(nullError.body.detail).toMatch(/error/);
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: 'yes' } })).status).toBe(400);
    expect(f.jobRow(job)?.end_time).toBeNull();
    expect(f.nodeRow(node).current_job).toBe(job);
  });

  it('B2: finishing twice, or before starting, is 406 UFDL_ERR_JOB_NOT_WORKING', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} })).status).toBe(406);
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} })).status).toBe(200);
    const again = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    expect(again.status).toBe(406);
    expect(again.body.detail).toMatch(/is not working job/);
  });

  it('clean-up path: after an abort, the node that was working the job gets a silent 200 and its current_job cleared', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/abort`);
    const res = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, send_notification: 'email', error: 'x' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ node: null, start_time: null, end_time: null, error_reason: null });
    expect(f.nodeRow(node).current_job).toBeNull();
  });

  it('clean-up path: after a cancel, finish is a silent 200 that leaves the job CANCELLED', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    const res = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_cancelled: true, end_time: null, error_reason: 'Cancelled' });
    expect(f.nodeRow(node).current_job).toBeNull();
  });

  it('is 403 for a node that neither holds nor works the job', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node: other, json: {} })).status).toBe(403);
  });
});

describe('reset', () => {
  it('takes an ERRORED job back to CREATED, still held by the node, keeping progress', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/progress/0.4`, { node, json: {} });
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    const res = await f.call('DELETE', `/v1/jobs/${job}/reset`, { node });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ node, start_time: null, end_time: null, error_reason: null });
    expect(f.jobRow(job)?.progress_amount).toBe(0.4);
    // The node can run it again.
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START })).status).toBe(200);
  });

  it('refuses CREATED, STARTED and FINISHED jobs with 406', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(406);
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(406);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    const res = await f.call('DELETE', `/v1/jobs/${job}/reset`, { node });
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/FINISHED: reset\nJob is not in the ERRORED phase/);
  });

  it('is 403 for an admin without the holding node and for another node', async () => {
    const { f, node, other, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`)).status).toBe(403);
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node: other })).status).toBe(403);
  });
});

describe('abort', () => {
  it('takes a STARTED job back to CREATED and unacquired; the working node keeps a stale current_job', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const res = await f.call('DELETE', `/v1/jobs/${job}/abort`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ node: null, start_time: null, end_time: null, error_reason: null });
    expect(f.nodeRow(node).current_job).toBe(job);
  });

  it('aborts acquired CREATED and ERRORED jobs too', async () => {
    const { f, node, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`)).body.node).toBeNull();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`)).body).toMatchObject({ node: null, error_reason: null });
  });

  it('refuses finalised jobs with 406', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    const res = await f.call('DELETE', `/v1/jobs/${job}/abort`);
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/FINISHED: abort\nCan't abort a finalised job/);
  });

  it('is admin only: 403 for the holding node’s (non-admin) owner, 401 anonymous', async () => {
    const { f, job } = await setup();
    const owner = await f.user();
    const node = f.node(owner.pk);
    await f.startAs(node, job, owner);
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`, { as: owner, node })).status).toBe(403);
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`, { as: null })).status).toBe(401);
  });
});

describe('cancel', () => {
  it('takes a STARTED job to CANCELLED with is_cancelled true, node unchanged', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    const res = await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_cancelled: true, error_reason: 'Cancelled', end_time: null, node });
  });

  it('B4: a CREATED job is really cancelled and can be neither acquired nor started', async () => {
    const { f, node, other, job } = await setup();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const cancelled = f.job();
    const res = await f.call('DELETE', `/v1/jobs/${cancelled}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_cancelled: true, error_reason: 'Cancelled', start_time: null });
    const acquire = await f.call('GET', `/v1/jobs/${cancelled}/acquire`, { node: other });
    expect(acquire.status).toBe(406);
    expect(acquire.body.detail).toMatch(/cancelled before it started/);
    // Cancelled after acquisition: the holder cannot start it, but may let go of it.
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    const start = await f.call('POST', `/v1/jobs/${job}/start`, { node, json: START });
    expect(start.status).toBe(406);
    expect(f.jobRow(job)?.start_time).toBeNull();
    expect((await f.call('DELETE', `/v1/jobs/${job}/release`, { node })).status).toBe(200);
    expect((await f.call('GET', `/v1/jobs/${job}`)).body.is_cancelled).toBe(true);
  });

  it('is a no-op 200 on finalised jobs', async () => {
    const { f, node, job } = await setup();
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    const res = await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_cancelled: false, error_reason: null });
    expect(res.body.end_time).toEqual(expect.any(String));
  });

  it('refuses a child job with 406', async () => {
    const { f, job } = await setup();
    const child = f.job();
    f.db.prepare('UPDATE jobs SET parent = ? WHERE pk = ?').run(job, child);
    const res = await f.call('DELETE', `/v1/jobs/${child}/cancel`);
    expect(res.status).toBe(406);
    expect(res.body.detail).toMatch(/Job is a child job/);
  });

  it('is allowed to the job’s creator, refused (403) to other users', async () => {
    const { f } = await setup();
    const creator = await f.user();
    const stranger = await f.user();
    const job = f.job({ creator: creator.pk });
    expect((await f.call('DELETE', `/v1/jobs/${job}/cancel`, { as: stranger })).status).toBe(403);
    expect(f.jobRow(job)?.error_reason).toBeNull();
    expect((await f.call('DELETE', `/v1/jobs/${job}/cancel`, { as: creator })).status).toBe(200);
  });
});

describe('a full run', () => {
  it('goes acquire → start → progress → error → reset → start → finish, as a node owned by a plain user', async () => {
    const { f, job } = await setup();
    const owner = await f.user();
    const node = f.node(owner.pk);
    const as = owner;
    const steps: Array<[string, string, unknown?]> = [
      ['GET', `/v1/jobs/${job}/acquire`],
      ['POST', `/v1/jobs/${job}/start`, START],
      ['POST', `/v1/jobs/${job}/progress/0.5`, { epoch: 1 }],
      ['POST', `/v1/jobs/${job}/finish`, { success: false, send_notification: 'email', error: 'Node restarted during job execution.' }],
      ['DELETE', `/v1/jobs/${job}/reset`],
      ['POST', `/v1/jobs/${job}/start`, START],
      ['POST', `/v1/jobs/${job}/progress/1.0`, {}],
      ['POST', `/v1/jobs/${job}/finish`, { success: true, send_notification: 'email' }],
    ];
    for (const [method, path, json] of steps) {
      const res = await f.call(method, path, { as, node, ...(json === undefined ? {} : { json }) });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(200);
    }
    const final = (await f.call('GET', `/v1/jobs/${job}`, { as })).body;
    expect(final).toMatchObject({ node, error_reason: null, is_cancelled: false });
    expect(final.end_time).toEqual(expect.any(String));
    // Every request with the Node-Id was a heartbeat.
    expect(f.nodeRow(node).last_seen).toEqual(expect.any(String));
  });
});
