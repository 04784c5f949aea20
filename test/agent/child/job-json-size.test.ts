/**
 * `job.json` is written compactly (issue 9, item 5): a create-job whose value nests deep (as deep as
 * the server allows) and holds many small elements makes a job file about as large as the request,
 * not a multiple of it (pretty-printing indents every line by the depth).
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../../src/server/json-depth.js';
import { api, startTestServer } from '../../helpers/server.js';
import { downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';

describe('job.json', () => {
  it('is about as large as the create-job that made it', async () => {
    const server = await startTestServer();
    const template = await importTemplate(
      server,
      shellTemplate('copy-job-json', 'cp "$UFDL_JOB_JSON" "$UFDL_OUTPUT_DIR/job.json"', { config: { types: ['JSON'], default: {}, help: 'anything' } }),
    );
    let value: unknown = Array.from({ length: 4000 }, () => 0);
    for (let depth = 1; depth < MAX_JSON_DEPTH - 3; depth++) value = [value];
    const body = JSON.stringify({ input_values: {}, parameter_values: { config: { value, type: 'JSON' } }, description: '' });
    const created = await api(server.url, 'POST', `/v1/job-templates/${template}/create-job`, {
      token: server.adminToken,
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status, created.text).toBe(200);
    await startTestAgent(server);
    const job = await waitForJob(server, created.body.pk, ended);
    expect(job.error_reason).toBeNull();
    const written = await downloadOutput(server, job.pk, 'job.json');
    // The value is in the file twice (the job's parameter_values, and the resolved parameters).
    expect(written.length).toBeLessThan(4 * Buffer.byteLength(body));
    expect(JSON.parse(written.toString()).parameters.config).toEqual(value);
  });
});
