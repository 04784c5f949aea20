/**
 * A running job hard-deleted on the server: the server closes the job's web-socket watchers (1008),
 * and the agent, whose watch was closed, reads the job again at once (404: gone), stops the child and
 * frees its slot, without waiting for its periodic re-read (here set to ten minutes, so only the
 * socket can tell it in time).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, createJob, importTemplate, recordingLogger, shellTemplate, started, startTestAgent, until, waitForJob } from '../../helpers/agent.js';
import { api, startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

describe('a running job hard-deleted on the server', () => {
  it('is stopped by the agent as soon as the server closes its job channel, and the node takes the next job', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-hard-deleted-');
    const pidFile = join(dir, 'child.pid');
    const { logger, lines } = recordingLogger();
    const { agent } = await startTestAgent(server, { cancelCheckIntervalMs: 600_000 }, dir, logger);
    const long = await importTemplate(server, shellTemplate('deleted-while-running', `echo $$ > '${pidFile}'\nwhile true; do sleep 0.1; done\n`));
    const pk = await createJob(server, long);
    await waitForJob(server, pk, started);
    await until(() => existsSync(pidFile), 20_000, 'the child');
    await until(() => agent.getStatus().jobs.some((j) => j.jobPk === pk && j.pid !== null), 20_000, 'the child in the status');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    // The agent watches the job (else a refused connection, not a closed one, would tell it).
    await until(() => lines.some((l) => l.msg === 'watching job' && l.job === pk), 20_000, 'the job watch');

    expect((await api(server.url, 'DELETE', `/v1/jobs/${pk}/hard`, { token: server.adminToken })).status).toBe(200);
    await until(() => agent.getStatus().jobs.length === 0, 30_000, 'the slot to be free');
    expect(alive(pid)).toBe(false);
    expect(lines.find((l) => l.msg === 'job left this node' && l.job === pk)).toMatchObject({ outcome: 'lost' });

    const next = await createJob(server, await importTemplate(server, shellTemplate('after-hard-delete', 'echo next\n')));
    expect((await waitForJob(server, next, (j) => j.end_time !== null, 30_000)).error_reason).toBeNull();
  });
});
