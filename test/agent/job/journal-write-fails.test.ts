/**
 * A journal write that fails inside a running job (SQLITE_FULL: the job filled the disk). Before, the
 * runner logged it and ended the job as `interrupted`; nothing revisited it until a restart, so the
 * job stayed started on the server and its node was refused every later start. Now the agent takes
 * no more work, says why, and once the journal takes a write again exits with 74 for a restart whose
 * recovery reports the job, outputs and all. The failure is the real SqliteError, thrown inside the
 * exit-status write's transaction by the `child-exit:write-full` fail point.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { openReadOnly } from '../../../src/agent/journal/index.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, downloadOutput, ended, fastAgentOptions, getJob, importTemplate, shellTemplate, restartUntil, spawnAgent } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('a journal write that fails with the disk full while a job runs', () => {
  it('stops taking work, exits 74 once it can write again, and the restart reports the job', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-journal-full-');
    const template = await importTemplate(server, shellTemplate('journal-full', 'echo weights > "$UFDL_OUTPUT_DIR/model.bin"\necho trained\n'));
    const pk = await createJob(server, template);
    const options = fastAgentOptions(server, dir);

    const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'child-exit:write-full' });
    const notReady = await first.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('NOT READY: the journal could not be written'), 30_000);
    expect(notReady).toMatchObject({ jobPk: pk, err: 'database or disk is full' });
    // 30 s only bounds how long a broken agent is waited for; a working one exits at its first probe.
    const exit = await Promise.race([first.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(exit, first.output().slice(-4000)).toEqual({ code: 74, signal: null });
    // The job is still started on the server and the journal still says `running`: only recovery can tell.
    expect((await getJob(server, pk)).end_time).toBeNull();
    const journal = openReadOnly(options.journalFile!);
    try {
      expect(journal.get(pk)).toMatchObject({ state: 'running', exitCode: null });
    } finally {
      journal.close();
    }

    const { job, agent: second } = await restartUntil(server, pk, options);
    expect(job.error_reason, second.output().slice(-3000)).toBeNull();
    expect((await downloadOutput(server, pk, 'model.bin')).toString()).toBe('weights\n');
  });
});
