/**
 * An agent against a server that sends a malformed template (a parameter that is `null`, which no
 * executor's check expects): a real embedded server behind a real HTTP proxy that corrupts the answers
 * for one template. The job of that template is skipped with the reason, like any job this node cannot
 * run, and the jobs behind it in the queue run: one bad template must not cost the node the queue.
 */
import { createServer, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createJob, ended, importTemplate, recordingLogger, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { listenOnLoopback } from '../../helpers/loopback.js';
import { startTestServer } from '../../helpers/server.js';

/** A proxy to `target` that answers template `pk()` with its `body` parameter set to null. */
async function templateCorruptingProxy(target: string, pk: () => number) {
  const server = createServer((req, res) => {
    const forward = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        let body = Buffer.concat(chunks);
        if (req.method === 'GET' && req.url === `/v1/job-templates/${pk()}` && answer.statusCode === 200) {
          const template = JSON.parse(body.toString()) as { parameters: Record<string, unknown> };
          template.parameters['body'] = null;
          body = Buffer.from(JSON.stringify(template));
        }
        const headers = { ...answer.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        res.writeHead(answer.statusCode ?? 502, headers).end(body);
      });
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  return (await listenOnLoopback(server)).url;
}

describe('an agent against a server that sends a malformed template', () => {
  it('skips the job of that template and runs the jobs behind it', async () => {
    const server = await startTestServer();
    const broken = await importTemplate(server, shellTemplate('broken', 'echo never'));
    const ok = await importTemplate(server, shellTemplate('ok', 'echo fine'));
    const proxy = await templateCorruptingProxy(server.url, () => broken);
    const first = await createJob(server, broken);
    const second = await createJob(server, ok);
    const { logger, lines } = recordingLogger();
    await startTestAgent({ url: proxy }, {}, undefined, logger);

    expect((await waitForJob(server, second, ended, 30_000)).error_reason).toBeNull();
    const skipped = lines.find((l) => l.msg === 'skipping a job this node cannot run' && l.job === first);
    expect(skipped, JSON.stringify(lines.filter((l) => (l.level as number) >= 40))).toBeDefined();
    expect(String(skipped!.reason)).toMatch(/template 'broken'/);
  }, 60_000);
});
