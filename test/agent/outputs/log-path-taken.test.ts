/**
 * The `log` output is written to `log.txt` in the job directory, which is the job's working directory:
 * the job's own code can leave something there under that name (a directory, say). Writing the log
 * output must then fail as a step of the job (the job is reported without it), never as an error
 * event with no listener, which would end the agent — and, as recovery writes the log output again,
 * end it again at every start.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createJob, ended, fastAgentOptions, importTemplate, shellTemplate, spawnAgent, waitForJob } from '../../helpers/agent.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('a job that leaves a directory named log.txt in its working directory', () => {
  it('is reported, and the agent keeps running', async () => {
    const server = await startTestServer();
    const script = ['seq 1 100000', 'mkdir log.txt', 'echo done > "$UFDL_OUTPUT_DIR/done.txt"', ''].join('\n');
    const template = await importTemplate(server, shellTemplate('takes-log-txt', script));
    const pk = await createJob(server, template);
    const agent = spawnAgent(fastAgentOptions(server, await tempDir('ufdl-log-path-taken-')));

    const outcome = await Promise.race([
      waitForJob(server, pk, ended, 60_000).then((job) => ({ job })),
      agent.exited.then((exit) => ({ exit })),
    ]);

    expect(outcome, agent.output().slice(-3000)).toHaveProperty('job');
    const { job } = outcome as { job: Awaited<ReturnType<typeof waitForJob>> };
    expect(job.outputs.map((o) => o.name)).toContain('done.txt');
    expect(agent.child.exitCode).toBeNull();
  }, 90_000);
});
