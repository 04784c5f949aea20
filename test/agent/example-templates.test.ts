/**
 * End to end with the example templates: the agent runs train-epochs, progress reaches a web-socket
 * watcher, the model downloads byte-identical, and predict consumes it.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, startTestAgent, waitForJob, watchUntilEnded } from '../helpers/agent.js';

for (const extensions of [true, false]) {
  describe(`example templates end to end (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('trains, reports progress to a watcher, and predicts with the trained model', async () => {
      const server = await startTestServer({ extensions });
      const train = await importTemplate(server, 'train-epochs');
      const predict = await importTemplate(server, 'predict');

      const pk = await createJob(server, train, {
        parameter_values: { epochs: { value: 4, type: 'int' }, epoch_seconds: { value: 0.15, type: 'float' } },
        notifications: true,
      });
      const { job, messages } = await watchUntilEnded(server, pk, () => startTestAgent(server));
      expect(job.error_reason).toBeNull();
      expect(messages.some((m) => m.transition === 'finish')).toBe(true);
      const progress = messages.filter((m) => m.transition === 'progress');
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)!.progress).toBe(1);
      expect(progress.at(-1)!.transition_data).toMatchObject({ epoch: 4, epochs: 4 });
      const values = progress.map((m) => m.progress);
      expect([...values].sort((a, b) => a - b)).toEqual(values);

      const trained = await waitForJob(server, pk, ended);
      const model = trained.outputs.find((o) => o.name === 'model.bin')!;
      expect(model).toBeDefined();
      const bytes = await downloadOutput(server, pk, 'model.bin');
      expect(bytes.toString()).toBe('ufdl-agent example model\nepochs=4\n');

      const predictPk = await createJob(server, predict, {
        input_values: { model: { value: model.pk, type: 'JobOutput<BLOB>' } },
        parameter_values: { items: { value: 5, type: 'int' } },
      });
      const predicted = await waitForJob(server, predictPk, ended);
      expect(predicted.error_reason).toBeNull();
      const csv = (await downloadOutput(server, predictPk, 'predictions.csv')).toString().trim().split('\n');
      expect(csv[0]).toBe('item,label,score');
      expect(csv).toHaveLength(6);
      const log = (await downloadOutput(server, predictPk, 'log')).toString();
      expect(log).toContain(`predicting with`);
      expect(log).toContain(`(${bytes.length} bytes)`);
      // The same bytes the predict job read were the ones train uploaded.
      expect(createHash('sha256').update(bytes).digest('hex')).toHaveLength(64);
    });
  });
}
