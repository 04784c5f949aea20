/**
 * Three replicas of the server (real `serve` processes) on one PostgreSQL database and one data
 * directory (issue 14): they start together and migrate once; an acquire race spread over them has
 * exactly one winner; a job created on one wakes a node waiting on another; a watcher on one sees the
 * transitions made on another, in order, and a watcher that reconnects elsewhere catches up; one
 * replica SIGKILLed under lifecycle load loses nothing it acknowledged while the clients carry on
 * through the others; the lost-node sweep moves to a surviving replica; live logs and workflows work
 * across them.
 */
import pg from 'pg';
import WebSocket from 'ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../../src/client/api.js';
import type { JobNotification } from '../../../src/protocol/wire.js';
import { PG_SCHEMA_VERSION } from '../../../src/server/store/postgres/schema.js';
import { createJob, importTemplate, shellTemplate, until } from '../../helpers/agent.js';
import { Fixtures } from '../../helpers/fixtures.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas, type Replica } from '../../helpers/replicas.js';
import { childrenOf, createPipelineJob, importDiamond, runChild } from '../support/workflow-specs.js';
import { ADMIN_PASSWORD, ADMIN_USER, api } from '../../helpers/server.js';

const cluster = usePgCluster();
let databases = 0;

async function threeReplicas(options: { together?: boolean; env?: Record<string, string>[] } = {}): Promise<{ replicas: Replica[]; fx: Fixtures; url: string }> {
  const url = await cluster.get().createDatabase(`replicas_${++databases}`);
  const { replicas } = await startReplicas(3, options.env ?? [], { databaseUrl: url, together: options.together ?? false });
  const fx = new Fixtures(replicas[0]!.server);
  onTestFinished(() => fx.close());
  return { replicas, fx, url };
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('three replicas on one PostgreSQL database', () => {
  it('start together: the schema is migrated once, one admin and one token secret serve all three', async () => {
    const { replicas, url } = await threeReplicas({ together: true });
    const versions = await query<{ version: number }>(url, 'SELECT version FROM ufdl_schema ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
    expect(await query(url, "SELECT pk FROM users WHERE username = 'admin'")).toHaveLength(1);
    expect(await query(url, "SELECT value FROM settings WHERE key = 'jwt_secret'")).toHaveLength(1);
    // A token from one replica is good on the others.
    for (const replica of replicas) {
      const res = await api(replica.url, 'POST', '/v1/jobs/list', { token: replicas[0]!.server.adminToken, json: {} });
      expect(res.status).toBe(200);
    }
  }, 240_000);

  it('an acquire race of 20 nodes spread over the replicas has exactly one winner, job after job', async () => {
    const { replicas, fx } = await threeReplicas();
    const nodes = Array.from({ length: 20 }, () => fx.node());
    const token = await fx.adminToken();
    for (let round = 0; round < 5; round++) {
      const job = fx.job();
      const answers = await Promise.all(
        nodes.map((node, i) => api(replicas[i % replicas.length]!.url, 'GET', `/v1/jobs/${job}/acquire`, { token, nodeId: node })),
      );
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 200), `round ${round}: ${statuses.join(',')}`).toHaveLength(1);
      expect(statuses.filter((s) => s !== 200).every((s) => s === 406)).toBe(true);
      const winner = nodes[answers.findIndex((a) => a.status === 200)];
      expect(fx.jobRow(job)?.node).toBe(winner);
    }
  }, 240_000);

  it('a job created on one replica wakes a node waiting on another', async () => {
    const { replicas } = await threeReplicas();
    const [a, b] = replicas as [Replica, Replica];
    const template = await importTemplate(a.server, shellTemplate('woken-across-replicas', 'true'));
    // Nothing to list yet: B holds the poll open for up to 60 s.
    const waiting = api(b.url, 'POST', '/v1/jobs/list', { token: b.server.adminToken, json: {}, headers: { 'x-ufdl-wait': '60' } });
    // Give the poll time to reach B and wait there; a job created before would simply be listed.
    await new Promise((r) => setTimeout(r, 500));
    const created = Date.now();
    const pk = await createJob(a.server, template);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect((answer.body as { pk: number }[]).map((j) => j.pk)).toContain(pk);
    // Woken, not timed out (the latency itself is a benchmark: bench:dispatch with replicas).
    expect(Date.now() - created).toBeLessThan(45_000);
  }, 240_000);

  it('a watcher on one replica sees the transitions made on another in order, and catches up after reconnecting elsewhere', async () => {
    const { replicas, fx } = await threeReplicas();
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const template = await importTemplate(a.server, shellTemplate('watched-on-b', 'true'));
    const pk = await createJob(a.server, template, { notifications: true });
    const node = fx.node();
    const watchOn = (replica: Replica) => {
      const client = new UfdlClient({ serverUrl: replica.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
      const messages: JobNotification[] = [];
      const watch = client.watchJob(pk, (m) => messages.push(m));
      onTestFinished(() => {
        watch.close();
        client.close();
      });
      return { client, watch, messages };
    };
    const onB = watchOn(b);
    // A CREATED job has nothing to catch up on: the watcher's first messages are the transitions.
    await until(() => onB.watch.connected, 60_000, 'the watch on B to connect');
    const caughtUp = onB.messages.length;
    const acting = { node };
    for (const [method, path, json] of [
      ['GET', `/v1/jobs/${pk}/acquire`, undefined],
      ['POST', `/v1/jobs/${pk}/start`, {}],
      ['POST', `/v1/jobs/${pk}/progress/0.25`, { step: 1 }],
      ['POST', `/v1/jobs/${pk}/progress/0.5`, { step: 2 }],
      ['POST', `/v1/jobs/${pk}/progress/0.75`, { step: 3 }],
    ] as const) {
      const res = await fx.call(method, path, { ...acting, ...(json === undefined ? {} : { json }) });
      expect(res.status, `${method} ${path} on A`).toBe(200);
    }
    await until(() => onB.messages.length >= caughtUp + 5, 60_000, 'the five transitions made on A to reach the watcher on B');
    const seen = onB.messages.slice(caughtUp).map((m) => `${m.transition}@${m.progress}`);
    expect(seen).toEqual(['acquire@0', 'start@0', 'progress@0.25', 'progress@0.5', 'progress@0.75']);

    // The watcher leaves B; the job moves on meanwhile; it watches again through C and catches up.
    onB.watch.close();
    expect((await fx.call('POST', `/v1/jobs/${pk}/finish`, { ...acting, json: {} })).status).toBe(200);
    const onC = watchOn(c);
    await until(() => onC.messages.length >= 1, 60_000, 'the watch on C to catch up');
    expect(onC.messages[0]).toMatchObject({ pk, transition: 'finish' });
  }, 240_000);

  it('one replica SIGKILLed under lifecycle load: nothing it acknowledged is lost, and the nodes carry on through the others', async () => {
    const { replicas, fx } = await threeReplicas();
    const token = await fx.adminToken();
    const workers = 6;
    const nodes = Array.from({ length: workers }, () => fx.node());
    const jobs = fx.jobs(60);
    const queue = [...jobs];
    const finished = new Set<number>();
    let killed = false;
    const urls = replicas.map((r) => r.url);
    /** One call, to the node's replica, moving to the next one when a replica does not answer. */
    const call = async (worker: number, method: string, path: string, json?: unknown) => {
      for (let attempt = 0; ; attempt++) {
        const url = urls[(worker + attempt) % urls.length]!;
        try {
          return await api(url, method, path, { token, nodeId: nodes[worker]!, ...(json === undefined ? {} : { json }) });
        } catch (err) {
          if (attempt > 20) throw err;
        }
      }
    };
    const work = async (worker: number) => {
      for (let pk = queue.shift(); pk !== undefined; pk = queue.shift()) {
        for (const [method, path, json] of [
          ['GET', `/v1/jobs/${pk}/acquire`, undefined],
          ['POST', `/v1/jobs/${pk}/start`, {}],
          ['POST', `/v1/jobs/${pk}/progress/0.5`, {}],
          ['POST', `/v1/jobs/${pk}/finish`, {}],
        ] as const) {
          const res = await call(worker, method, path, json);
          // A replica killed mid-request leaves the outcome unknown; the retry elsewhere finds the
          // transition done (acquire: no-op 200; the others: 406 once past) or does it.
          if (res.status !== 200 && !(res.status === 406 && killed)) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
        }
        const finish = fx.jobRow(pk);
        if (finish?.end_time !== null) finished.add(pk);
        if (!killed && finished.size >= 15) {
          killed = true;
          await replicas[0]!.kill();
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, i) => work(i)));
    expect(killed).toBe(true);
    // Every job ran to its end exactly once, through whichever replicas were alive.
    for (const pk of jobs) {
      const row = fx.jobRow(pk)!;
      expect(row.end_time, `job ${pk}`).not.toBeNull();
      expect(row.error_reason, `job ${pk}`).toBeNull();
    }
    // The survivors still answer.
    for (const replica of replicas.slice(1)) expect((await api(replica.url, 'GET', '/livez')).status).toBe(200);
  }, 300_000);

  it('the lost-node sweep moves to a surviving replica when the one leading it dies', async () => {
    // The first replica to start leads the sweep; nodes are lost after 1 s of silence.
    const env = Array.from({ length: 3 }, () => ({ UFDL_AGENT_SERVE_LOST_AFTER: '1' }));
    const { replicas } = await threeReplicas({ env });
    await replicas[0]!.kill();
    const fx = new Fixtures(replicas[1]!.server);
    onTestFinished(() => fx.close());
    const node = fx.node();
    const job = fx.job();
    await fx.startAs(node, job);
    // The node falls silent; only a surviving replica can now sweep it (within the leadership
    // check, 5 s, and a sweep interval, 15 s).
    fx.db.prepare('UPDATE nodes SET last_seen = ? WHERE pk = ?').run('2000-01-01T00:00:00.000Z', node);
    // Swept: aborted back to the queue (unheld, unstarted) for another node to run.
    await until(() => fx.jobRow(job)?.node === null, 90_000, "a surviving replica to abort the lost node's job");
    expect(fx.jobRow(job)).toMatchObject({ node: null, start_time: null, end_time: null });
  }, 240_000);

  it("a live log appended through one replica streams to a follower on another while the job runs, and its progress history is written once", async () => {
    const { replicas, fx } = await threeReplicas();
    const [a, b] = replicas as [Replica, Replica];
    const node = fx.node();
    const job = fx.job();
    await fx.startAs(node, job);
    const token = await fx.adminToken();
    const received: Buffer[] = [];
    const ws = new WebSocket(`${b.url.replace('http', 'ws')}/v1/jobs/${job}/log?offset=0&token=${token}`);
    onTestFinished(() => ws.terminate());
    ws.on('message', (data, binary) => {
      if (binary) received.push(data as Buffer);
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const text = () => Buffer.concat(received).toString();
    let offset = 0;
    for (const line of ['first line\n', 'second line\n', 'third line\n']) {
      const res = await api(a.url, 'POST', `/v1/jobs/${job}/log?offset=${offset}&max_bytes=65536`, {
        token,
        nodeId: node,
        body: new Uint8Array(Buffer.from(line)),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status, res.text).toBe(200);
      offset += line.length;
      // Each append reaches the follower on B while the job still runs (no transition pokes it).
      await until(() => text().endsWith(line), 30_000, `the follower on B to receive ${JSON.stringify(line)}`);
    }
    expect(text()).toBe('first line\nsecond line\nthird line\n');
    // A progress report through A is recorded once in the shared directory, not once per replica.
    expect((await fx.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { step: 1 } })).status).toBe(200);
    await until(async () => (await api(b.url, 'GET', `/v1/jobs/${job}/progress-history`, { token })).status === 200, 30_000, 'the progress history');
    await new Promise((r) => setTimeout(r, 1_000));
    const history = await api(b.url, 'GET', `/v1/jobs/${job}/progress-history`, { token });
    expect(history.body).toHaveLength(1);
  }, 240_000);

  it("two children of a workflow finishing at the same moment on two replicas start the step that needs both, exactly once", async () => {
    const { replicas, fx } = await threeReplicas();
    const [, b] = replicas as [Replica, Replica];
    const template = await importDiamond(fx);
    const token = await fx.adminToken();
    const [nodeA, nodeB] = [fx.node(), fx.node()];
    for (let round = 0; round < 5; round++) {
      const parent = await createPipelineJob(fx, template, { input_values: { 'a:seed': { value: 1, type: 'int' }, 'b:seed': { value: 2, type: 'int' } } });
      const children = await childrenOf(fx, parent.pk);
      await runChild(fx, nodeA, children.a.pk, { outputs: { 'model.bin': 'BLOB' }, finish: false });
      await runChild(fx, nodeB, children.b.pk, { outputs: { report: 'JSON' }, finish: false });
      // Both finishes at once, one through replica A, the other through replica B.
      const finishes = await Promise.all([
        fx.call('POST', `/v1/jobs/${children.a.pk}/finish`, { node: nodeA, json: {} }),
        api(b.url, 'POST', `/v1/jobs/${children.b.pk}/finish`, { token, nodeId: nodeB, json: {} }),
      ]);
      expect(finishes.map((f) => f.status), `round ${round}`).toEqual([200, 200]);
      const joins = fx.db.prepare("SELECT pk FROM jobs WHERE parent = ? AND child_name = 'join'").all(parent.pk);
      expect(joins, `round ${round}: the join step`).toHaveLength(1);
    }
  }, 240_000);
});
