/**
 * The agent's health endpoints (issue 4 "Deployment", "Tests"): `/livez`, `/readyz` and
 * `/status.json` as the server goes away and comes back on the same data and port, and `/readyz`
 * as the slots fill with jobs and empty again.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { restartableServer, startTestServer } from '../../helpers/server.js';
import { createJob, ended, importTemplate, shellTemplate, startTestAgent, until, waitForJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

interface Probe {
  status: number;
  body: { ready?: boolean; status?: string; reasons: string[] };
}

async function probe(base: string, path: '/livez' | '/readyz'): Promise<Probe> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: (await res.json()) as Probe['body'] };
}

async function statusOf(base: string): Promise<{ ready: boolean; notReady: string[]; lastServerContactAt: string; serverSilentMs: number; jobs: unknown[] }> {
  return (await (await fetch(`${base}/status.json`)).json()) as never;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const extensions of [true, false]) {
  describe(`health as the server goes away and comes back (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('is not ready while the server is away, stays alive, and is ready again once it is back', async () => {
      const { server, start, stop } = await restartableServer({ extensions });
      // Wake-up polls held 1 s at most: an idle agent hears from the server every second.
      const { agent } = await startTestAgent(server, { waitSeconds: 1, errorBackoffS: [0.2, 0.5] });
      const base = agent.statusUrl!;
      await until(async () => (await probe(base, '/readyz')).status === 200, 10_000, 'ready');
      expect((await probe(base, '/readyz')).body).toEqual({ ready: true, status: 'ok', reasons: [] });
      const first = Date.parse((await statusOf(base)).lastServerContactAt);
      await until(async () => Date.parse((await statusOf(base)).lastServerContactAt) > first, 5000, 'the contact time to advance');

      await stop();
      let away: Probe | undefined;
      await until(async () => (away = await probe(base, '/readyz')).status === 503, 10_000, 'not ready without the server');
      expect(away!.body.ready).toBe(false);
      expect(away!.body.reasons).toContainEqual(expect.stringMatching(new RegExp(`^the server ${server.url} cannot be reached`)));
      expect((await probe(base, '/livez')).status).toBe(200);
      const silent = await statusOf(base);
      expect(silent.ready).toBe(false);
      expect(silent.notReady).toContainEqual(expect.stringMatching(/cannot be reached/));
      await sleep(1500);
      const later = await statusOf(base);
      expect(later.lastServerContactAt).toBe(silent.lastServerContactAt);
      expect(later.serverSilentMs).toBeGreaterThan(silent.serverSilentMs);
      expect((await probe(base, '/livez')).status).toBe(200);

      await start();
      await until(async () => (await probe(base, '/readyz')).status === 200, 15_000, 'ready again once the server is back');
      expect((await probe(base, '/readyz')).body).toEqual({ ready: true, status: 'ok', reasons: [] });
      expect(Date.parse((await statusOf(base)).lastServerContactAt)).toBeGreaterThan(Date.parse(later.lastServerContactAt));
      expect((await probe(base, '/livez')).status).toBe(200);
    });
  });
}

describe('health as the slots fill', () => {
  it('is not ready while every slot runs a job, and ready again when a job ends', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-health-');
    // Each job runs until its own file appears.
    const template = await importTemplate(
      server,
      shellTemplate('until-released', `touch "${dir}/started-$UFDL_JOB_PK"\nwhile [ ! -e "${dir}/release-$UFDL_JOB_PK" ]; do sleep 0.05; done\n`),
    );
    const { agent } = await startTestAgent(server, { slots: 2 });
    const base = agent.statusUrl!;
    const ready = async () => (await probe(base, '/readyz')).status === 200;
    await until(ready, 10_000, 'ready');

    const firstPk = await createJob(server, template);
    await until(() => existsSync(join(dir, `started-${firstPk}`)), 15_000, 'the first job to run');
    // One slot of two runs a job: still ready.
    expect(await probe(base, '/readyz')).toEqual({ status: 200, body: { ready: true, status: 'ok', reasons: [] } });

    const secondPk = await createJob(server, template);
    await until(() => existsSync(join(dir, `started-${secondPk}`)), 15_000, 'the second job to run');
    const full = await probe(base, '/readyz');
    expect(full).toEqual({ status: 503, body: { ready: false, status: 'unavailable', reasons: ['no free slot: all 2 slot(s) run a job'] } });
    expect((await statusOf(base)).ready).toBe(false);
    expect((await probe(base, '/livez')).status).toBe(200);

    await writeFile(join(dir, `release-${firstPk}`), '');
    expect((await waitForJob(server, firstPk, ended)).error_reason).toBeNull();
    await until(ready, 10_000, 'ready again when a slot is free');

    await writeFile(join(dir, `release-${secondPk}`), '');
    expect((await waitForJob(server, secondPk, ended)).error_reason).toBeNull();
    await until(() => agent.getStatus().jobs.length === 0, 10_000, 'the jobs to leave');
    expect((await probe(base, '/readyz')).status).toBe(200);
  });
});
