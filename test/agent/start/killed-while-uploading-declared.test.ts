/**
 * A job whose command succeeds without leaving an output its template declares is an error ("a
 * success without its outputs is a lie"). The agent learns what is missing when it scans the output
 * directory, before `uploading`; killed while uploading, the restarted agent must still know it, and
 * report the same error, not a success.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, shellTemplate, restartUntil, spawnAgent, type ServerJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

const DECLARED = { outputs: { types: ['JSON'], default: { 'model.bin': 'BLOB', 'notes.txt': 'BLOB' }, const: true, help: 'declared outputs' } };

/** Run `script` under an agent killed at fail point `point`, restart it, and return the job as it ended. */
async function killedAndRestarted(script: string, declared: typeof DECLARED, point: string): Promise<ServerJob> {
  const server = await startTestServer();
  const dir = await tempDir('ufdl-killed-declared-');
  const template = await importTemplate(server, shellTemplate('forgetful', script, declared));
  const pk = await createJob(server, template);
  const options = fastAgentOptions(server, dir);

  const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: point });
  expect(await first.exited, first.output().slice(-3000)).toEqual({ code: null, signal: 'SIGKILL' });

  const { job } = await restartUntil(server, pk, options);
  return job;
}

describe('an agent killed while uploading the outputs of a job that left out a declared one', () => {
  for (const point of ['uploading:after-write', 'output-uploading:after-write']) {
    it(`reports the missing output after a restart at ${point}, as it would have without the crash`, async () => {
      // notes.txt is left, model.bin is not.
      const job = await killedAndRestarted('echo notes > "$UFDL_OUTPUT_DIR/notes.txt"\necho "forgot the model"\n', DECLARED, point);
      expect(job.error_reason).toBe('The command succeeded but did not leave its declared output(s): model.bin');
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'notes.txt']);
    });
  }

  // A template may declare an output named `log`, which no file of the output directory can be (the
  // name is the job log's): the run reports it missing. The journal holds the job log under that
  // name, which must not count as the declared output after a restart.
  it('reports a declared `log` output missing after a restart, as it would have without the crash', async () => {
    const declared = { outputs: { ...DECLARED.outputs, default: { ...DECLARED.outputs.default, log: 'BLOB' } } };
    const job = await killedAndRestarted('echo notes > "$UFDL_OUTPUT_DIR/notes.txt"\n', declared, 'uploading:after-write');
    expect(job.error_reason).toBe('The command succeeded but did not leave its declared output(s): log, model.bin');
  });
});
