/**
 * The lifecycle benchmark's durable floor (bench/lib/durable-floor.mjs) stands for "the least a
 * durable job server must do"; a floor that skipped part of that work, or answered what it refused,
 * would make the benchmark's conclusion wrong. So: a lifecycle through it is answered as the API
 * answers (the job's JSON, its state as written), a transition out of turn or by the wrong node is
 * refused, and what it answered is in the database file when it is killed. Its speed is the
 * benchmark's business.
 */
import Database from 'better-sqlite3';
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const FLOOR = resolve(import.meta.dirname, '../../bench/lib/durable-floor.mjs');
const NODE = 7;

async function startFloor(dataDir: string, frontEnd: string): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(FLOOR, [JSON.stringify({ dataDir, nodePks: [NODE, NODE + 1], frontEnd })], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const { port } = await new Promise<{ port: number }>((done, fail) => {
    child.once('message', (m) => done(m as { port: number }));
    child.once('exit', (code) => fail(new Error(`the floor exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

describe.each(['http', 'fastify'])('bench/lib/durable-floor.mjs in front of %s', (frontEnd) => {
  it('answers a lifecycle as the API does, refuses transitions out of turn, and keeps what it answered', async () => {
    const dir = await tempDir('ufdl-durable-floor-');
    const { url, child } = await startFloor(dir, frontEnd);
    const call = async (method: string, path: string, { node = NODE, body, type = 'application/json' }: { node?: number | null; body?: string; type?: string } = {}) => {
      const headers: Record<string, string> = { authorization: 'Bearer x' };
      if (node !== null) headers['node-id'] = String(node);
      if (body !== undefined) headers['content-type'] = type;
      const res = await fetch(`${url}${path}`, { method, headers, body });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };

    const created = await call('POST', '/v1/job-templates/1/create-job', { node: null, body: JSON.stringify({ input_values: { a: 1 }, parameter_values: {}, description: 'floor' }) });
    expect(created.status).toBe(200);
    const pk = created.json.pk as number;
    expect(created.json).toMatchObject({ template: { pk: 1, name: 'bench-noop', version: 1 }, node: null, start_time: null, input_values: { a: 1 }, outputs: [] });

    // Out of turn: progress before start, and a start by a node that did not acquire the job.
    expect((await call('POST', `/v1/jobs/${pk}/progress/0.5`, { body: '{}' })).status).toBe(406);
    expect((await call('GET', `/v1/jobs/${pk}/acquire`)).json).toMatchObject({ pk, node: NODE });
    expect((await call('GET', `/v1/jobs/${pk}/acquire`, { node: NODE + 1 })).status).toBe(406);
    expect((await call('POST', `/v1/jobs/${pk}/start`, { node: NODE + 1, body: '{}' })).status).toBe(406);
    const started = await call('POST', `/v1/jobs/${pk}/start`, { body: '{}' });
    expect(started.json.start_time).toEqual(expect.any(String));
    expect((await call('POST', `/v1/jobs/${pk}/progress/0.5`, { body: '{"step":1}' })).status).toBe(200);
    const output = await call('POST', `/v1/jobs/${pk}/outputs/result/BLOB`, { body: 'x'.repeat(1024), type: 'application/data' });
    expect(output.status).toBe(200);
    const finished = await call('POST', `/v1/jobs/${pk}/finish`, { body: '{"success":true}' });
    expect(finished.json).toMatchObject({ pk, node: NODE, end_time: expect.any(String), error_reason: null, outputs: [{ name: 'result', type: 'BLOB' }] });
    // Refused once finished; no token, no answer.
    expect((await call('POST', `/v1/jobs/${pk}/progress/0.9`, { body: '{}' })).status).toBe(406);
    expect((await fetch(`${url}/v1/jobs/${pk}/acquire`)).status).toBe(401);

    // Killed at once, the file holds what was answered.
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));
    const db = new Database(join(dir, 'floor.sqlite3'), { readonly: true });
    onTestFinished(() => {
      db.close();
    });
    const row = db.prepare('SELECT node, start_time, end_time, progress_amount FROM jobs WHERE pk = ?').get(pk) as Record<string, unknown>;
    expect(row).toEqual({ node: NODE, start_time: started.json.start_time, end_time: finished.json.end_time, progress_amount: 0.5 });
    expect(db.prepare('SELECT length(content) AS bytes FROM outputs WHERE job = ?').all(pk)).toEqual([{ bytes: 1024 }]);
    expect(db.prepare('SELECT current_job FROM nodes WHERE pk = ?').pluck().all(NODE)).toEqual([null]);
  });
});
