/**
 * An acknowledged transition survives `kill -9` of the server: the server runs as its own process
 * (the built CLI), clients drive jobs through their lifecycle and remember every 200 they got, the
 * process is SIGKILLed while requests are still in flight, and a new server on the same data
 * directory must show every acknowledged transition.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { shellTemplate } from '../helpers/agent.js';
import { ADMIN_PASSWORD, api, freePort, spawnServe } from '../helpers/server.js';
import { buildOnce } from '../helpers/build.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 180_000);

async function login(url: string): Promise<string> {
  const res = await api<{ access: string }>(url, 'POST', '/v1/auth/obtain', { json: { username: 'admin', password: ADMIN_PASSWORD } });
  expect(res.status).toBe(200);
  return res.body.access;
}

const TEMPLATE = shellTemplate('durable', 'true');

type Step = 'created' | 'acquired' | 'started' | 'progressed' | 'output' | 'finished';

describe('server durability', () => {
  it('keeps every acknowledged transition across kill -9 and restart', async () => {
    const dataDir = await tempDir('ufdl-durable-');
    const port = await freePort();
    let server = await spawnServe(dataDir, port);
    const token = await login(server.url);
    const template = await api(server.url, 'POST', '/v1/job-templates/import', { token, json: TEMPLATE });
    expect(template.status).toBe(200);
    const nodes: number[] = [];
    for (let i = 0; i < 8; i++) {
      const node = await api(server.url, 'POST', '/v1/nodes/create', { token, json: { ip: '127.0.0.1', index: i, cpu_mem: 1 } });
      expect(node.status).toBe(201);
      nodes.push(node.body.pk);
    }

    // Each worker drives jobs through their lifecycle and records the last step the server
    // acknowledged for each job. The kill comes while they are running.
    const acknowledged = new Map<number, Step>();
    let stop = false;
    const worker = async (nodeId: number) => {
      while (!stop) {
        try {
          const created = await api(server.url, 'POST', `/v1/job-templates/${template.body.pk}/create-job`, {
            token,
            json: { input_values: {}, parameter_values: {} },
          });
          if (created.status !== 200) return;
          const pk = created.body.pk as number;
          acknowledged.set(pk, 'created');
          const steps: Array<[Step, string, string, Parameters<typeof api>[3]]> = [
            ['acquired', 'GET', `/v1/jobs/${pk}/acquire`, { token, nodeId }],
            ['started', 'POST', `/v1/jobs/${pk}/start`, { token, nodeId, json: { send_notification: 'email' } }],
            ['progressed', 'POST', `/v1/jobs/${pk}/progress/0.5`, { token, nodeId, json: { step: 1 } }],
            [
              'output',
              'POST',
              `/v1/jobs/${pk}/outputs/out/BLOB`,
              { token, nodeId, body: `output of ${pk}`, headers: { 'content-disposition': 'attachment; filename=out' } },
            ],
            ['finished', 'POST', `/v1/jobs/${pk}/finish`, { token, nodeId, json: { success: true, send_notification: 'email' } }],
          ];
          for (const [step, method, path, opts] of steps) {
            const res = await api(server.url, method, path, opts);
            if (res.status !== 200) return;
            acknowledged.set(pk, step);
          }
        } catch {
          return; // the server is gone
        }
      }
    };
    const workers = nodes.map((n) => worker(n));
    // Let some work be acknowledged, then kill the server in the middle of it.
    const deadline = Date.now() + 30_000;
    while ([...acknowledged.values()].filter((s) => s === 'finished').length < 10 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // Listen for the exit before the kill: it may come before the workers have all returned.
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGKILL');
    stop = true;
    await Promise.all(workers);
    await exited;
    expect(acknowledged.size).toBeGreaterThanOrEqual(10);

    server = await spawnServe(dataDir, port);
    const token2 = await login(server.url);
    for (const [pk, step] of acknowledged) {
      const job = await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: token2 });
      expect(job.status, `job ${pk} (acknowledged ${step})`).toBe(200);
      const j = job.body;
      if (step !== 'created') expect(j.node, `job ${pk} node after ${step}`).not.toBeNull();
      if (['started', 'progressed', 'output', 'finished'].includes(step)) expect(j.start_time, `job ${pk} start after ${step}`).not.toBeNull();
      if (step === 'output' || step === 'finished') {
        expect(j.outputs.map((o: { name: string }) => o.name), `job ${pk} outputs after ${step}`).toEqual(['out']);
        const bytes = await api(server.url, 'GET', `/v1/jobs/${pk}/outputs/out/BLOB`, { token: token2 });
        expect(bytes.text).toBe(`output of ${pk}`);
      }
      if (step === 'finished') {
        expect(j.end_time, `job ${pk} end after finish`).not.toBeNull();
        expect(j.error_reason).toBeNull();
      }
    }
  });
});
