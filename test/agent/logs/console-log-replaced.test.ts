/**
 * A job's console output lives in its working directory (`console.log`), where the job's own code can
 * remove or replace it. Whatever it puts there, the live log that follows the file must not take the
 * agent down: a read that fails is a failed send (the `log` output says what it can), and the job is
 * reported.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createJob, ended, fastAgentOptions, importTemplate, shellTemplate, spawnAgent, waitForJob } from '../../helpers/agent.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('a job that replaces its console.log with a directory', () => {
  it('is reported, and the agent keeps running', async () => {
    const server = await startTestServer();
    // The working directory is the job directory: the child's output still goes to the removed file.
    const script = ['rm console.log', 'mkdir console.log', 'sleep 3', 'echo done > "$UFDL_OUTPUT_DIR/done.txt"', ''].join('\n');
    const template = await importTemplate(server, shellTemplate('replaces-its-log', script));
    const pk = await createJob(server, template);
    const agent = spawnAgent(fastAgentOptions(server, await tempDir('ufdl-console-replaced-')));

    const outcome = await Promise.race([
      waitForJob(server, pk, ended, 60_000).then((job) => ({ job })),
      agent.exited.then((exit) => ({ exit })),
    ]);

    expect(outcome, agent.output().slice(-3000)).toHaveProperty('job');
    const { job } = outcome as { job: Awaited<ReturnType<typeof waitForJob>> };
    expect(job.error_reason).toBeNull();
    expect(job.outputs.map((o) => o.name)).toContain('done.txt');
    expect(agent.child.exitCode).toBeNull();
  }, 90_000);
});
