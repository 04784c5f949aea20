/**
 * Jobs that no node will run (issue 9, item 7): a template whose declared output name contains `/`
 * is refused at import, since every agent would skip its jobs; and a job that the agents skip for a
 * reason of their own (here: an executor the node does not offer) shows why it waits — in its JSON
 * (`waiting`, the job's page), in `ufdl-agent jobs` and in `ufdl-agent watch`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer } from '../../helpers/server.js';
import { createJob, getJob, importTemplate, runTemplate, startTestAgent, until } from '../../helpers/agent.js';
import { cli, serverEnv, startCli } from '../../cli/commands-support.js';

beforeAll(buildOnce, 180_000);

describe('jobs no node will run', () => {
  it('a template declaring an output name with a slash is refused at import', async () => {
    const server = await startTestServer();
    const res = await api(server.url, 'POST', '/v1/job-templates/import', {
      token: server.adminToken,
      json: runTemplate('slashed', 'ufdl_agent.Shell', {
        body: { types: ['str'], default: 'echo hi > "$UFDL_OUTPUT_DIR/model.bin"', const: true, help: '' },
        outputs: { types: ['JSON'], default: { 'models/model.bin': 'BLOB' }, const: true, help: '' },
      }),
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe(
      'Bad job template: specific.parameters.outputs.default: the output name "models/model.bin" contains a path separator, so no job of this template could upload it',
    );
  });

  it('a job the agents skip says why it waits: in its JSON, in `jobs` and in `watch`', { timeout: 90_000 }, async () => {
    const server = await startTestServer();
    const docker = await importTemplate(server, runTemplate('needs-docker', 'ufdl_agent.Docker', { image: { types: ['str'], default: 'busybox', const: true, help: '' } }));
    const agent = await startTestAgent(server, { docker: false });
    const pk = await createJob(server, docker);
    await until(async () => (await getJob(server, pk) as unknown as { waiting?: unknown[] }).waiting !== undefined, 30_000, 'the reason to reach the server');
    const job = (await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).body;
    const node = agent.agent.getStatus().slots[0]!.nodePk;
    expect(job.node).toBeNull();
    expect(job.waiting).toEqual([
      { node, reason: 'executor ufdl_agent.Docker is not available on this node: disabled by configuration', since: expect.any(String) },
    ]);

    const jobs = await cli(['jobs'], { env: serverEnv(server) });
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(jobs.stdout).toMatch(/WAITING BECAUSE/);
    expect(jobs.stdout).toContain(`node ${node}: executor ufdl_agent.Docker is not available on this node: disabled by configuration`);

    // `watch` says it on its first line, then waits, until the job is cancelled.
    const watching = startCli(['watch', String(pk)], { env: serverEnv(server) });
    await watching.stdoutMatches(/created, waiting/);
    expect((await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken })).status).toBe(200);
    const watch = await watching.result;
    expect(watch.stdout.split('\n')[0]).toBe(
      `job ${pk} (needs-docker@1): created, waiting: node ${node}: executor ufdl_agent.Docker is not available on this node: disabled by configuration`,
    );
  });
});
