/**
 * A job that was acquired but could not start is released so that any node can run it. The poll
 * filter lists only jobs no node holds, so a release that never lands leaves the job held by this
 * node, unseen by every node (this one too) until the agent restarts: the release must wait for the
 * server as long as the agent runs, however long it refuses.
 */
import { describe, expect, it } from 'vitest';
import { createJob, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { answerJson, httpProxy } from '../../helpers/http-proxy.js';
import { startTestServer } from '../../helpers/server.js';

/**
 * A proxy to `target` that answers 503 to the first start and to the first `releaseFailures`
 * releases (the server never sees them); everything else passes. Counts the releases.
 */
async function refusingProxy(target: string, releaseFailures: number) {
  const counts = { starts: 0, releases: 0 };
  const url = await httpProxy(target, {
    answer: (req, res) =>
      (req.method === 'POST' && /\/start$/.test(req.url!) && ++counts.starts === 1) ||
      (req.method === 'DELETE' && /\/release$/.test(req.url!) && ++counts.releases <= releaseFailures)
        ? answerJson(res, 503, 'unavailable (test)')
        : false,
  });
  return { url, counts };
}

describe('releasing a job that could not start', () => {
  it('goes on until the server takes the release, and the job then runs', async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, shellTemplate('release-waits', 'echo ran > "$UFDL_OUTPUT_DIR/ran.txt"\n'));
    // More refusals than a few quick retries cover: the server is away for a while.
    const proxy = await refusingProxy(server.url, 5);
    await startTestAgent({ url: proxy.url });
    const pk = await createJob(server, template);

    const job = await waitForJob(server, pk, ended, 45_000);

    expect(job.error_reason).toBeNull();
    expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'ran.txt']);
    expect(proxy.counts.releases).toBe(6);
  }, 90_000);
});
