/**
 * A node whose queue head is all jobs it skips (here: a Docker job on a node without Docker) still
 * waits to be woken on a server with wake-up: its poll names the jobs it skips (`pk ≠ n` terms), the
 * server's answer leaves them out, and an empty answer is held until a job it may take arrives. Before,
 * the answer listed the skipped job at once, and the node slept its idle schedule — set here to ten
 * minutes, so only a wake-up can bring it the next job within the test.
 */
import { describe, expect, it } from 'vitest';
import { createJob, ended, getJob, importTemplate, recordingLogger, runTemplate, shellTemplate, startTestAgent, until, waitForJob } from '../../helpers/agent.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

describe('a node that skips the head of the queue', () => {
  it('waits on the server with those jobs left out, and is woken for a job it can run', async () => {
    const server = await startTestServer();
    const docker = await importTemplate(server, runTemplate('needs-docker', 'ufdl_agent.Docker', { image: { types: ['str'], default: 'busybox', const: true, help: '' } }));
    const skipped = await createJob(server, docker);
    const { logger, lines } = recordingLogger();
    await startTestAgent(server, { docker: false, pollScheduleS: [600], skipFailedForMs: 600_000 }, await tempDir('ufdl-skipped-head-'), logger);
    await until(() => lines.some((l) => l.msg === 'skipping a job this node cannot run' && l.job === skipped), 30_000, 'the Docker job to be skipped');

    const runnable = await createJob(server, await importTemplate(server, shellTemplate('runnable-after-skip', 'true')));
    expect((await waitForJob(server, runnable, ended, 30_000)).error_reason).toBeNull();
    // The skipped job still waits for a node that can run it.
    expect((await getJob(server, skipped)).node).toBeNull();
  });

  it('does not poll over and over when its skips end before the next poll (skipFailedForMs 0)', async () => {
    const server = await startTestServer();
    const docker = await importTemplate(server, runTemplate('needs-docker-0', 'ufdl_agent.Docker', { image: { types: ['str'], default: 'busybox', const: true, help: '' } }));
    const skipped = await createJob(server, docker);
    let lists = 0;
    server.onRequest((request) => {
      if (request.method === 'POST' && request.url === '/v1/jobs/list') lists++;
    });
    const { logger, lines } = recordingLogger();
    await startTestAgent(server, { docker: false, pollScheduleS: [600], skipFailedForMs: 0 }, await tempDir('ufdl-skipped-head-0-'), logger);
    await until(() => lines.some((l) => l.msg === 'skipping a job this node cannot run' && l.job === skipped), 30_000, 'the Docker job to be skipped');
    const after = lists;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Its skip over at once, no poll leaves the job out: one poll at once at most, then the idle schedule.
    expect(lists - after).toBeLessThanOrEqual(1);
  });
});
