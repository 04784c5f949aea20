/**
 * The server stopped for a while in the middle of a job and started again on the same data and port:
 * the job finishes and is reported, with its outputs.
 */
import { describe, expect, it } from 'vitest';
import { restartableServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, until, waitForJob } from '../helpers/agent.js';

for (const extensions of [true, false]) {
  describe(`the server restarted mid-job (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('finishes and reports the job once the server is back', async () => {
      const { server, start, stop } = await restartableServer({ extensions });
      const template = await importTemplate(
        server,
        shellTemplate('outlives-the-server', 'echo "UFDL-PROGRESS 0.2"\nsleep 1.5\necho "UFDL-PROGRESS 0.9"\necho survived > "$UFDL_OUTPUT_DIR/result.txt"\n'),
      );
      const { agent } = await startTestAgent(server, { errorBackoffS: [0.2, 0.5, 1] });
      const pk = await createJob(server, template);
      await until(() => agent.getStatus().jobs.some((j) => j.jobPk === pk && j.pid !== null), 15_000, 'the child to start');
      await stop();
      // The child ends while the server is away; the agent keeps what it owes.
      await new Promise((r) => setTimeout(r, 3000));
      expect(agent.getStatus().ready).toBe(false);
      await start();
      const job = await waitForJob(server, pk, ended, 30_000);
      expect(job.error_reason).toBeNull();
      expect((await downloadOutput(server, pk, 'result.txt')).toString()).toBe('survived\n');
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
      await until(() => agent.getStatus().ready, 10_000, 'the agent to be ready again');
    });
  });
}
