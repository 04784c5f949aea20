import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, startTestAgent, waitForJob } from '../helpers/agent.js';

for (const extensions of [true, false]) {
  describe(`agent end to end (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('runs shell-hello and uploads its greeting and log', async () => {
      const server = await startTestServer({ extensions });
      const template = await importTemplate(server, 'shell-hello');
      const { agent } = await startTestAgent(server);
      expect(agent.state).toBe('running');
      const pk = await createJob(server, template, { parameter_values: { name: { value: 'tester', type: 'str' } } });
      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toBeNull();
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['greeting.txt', 'log']);
      expect((await downloadOutput(server, pk, 'greeting.txt')).toString()).toBe('Hello, tester!\n');
      expect((await downloadOutput(server, pk, 'log')).toString()).toContain('Hello, tester!');
    });
  });
}
