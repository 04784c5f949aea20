/**
 * The agent killed after the server acknowledged an output's upload and before the journal recorded
 * it. The upload hashes the file as it sends it, so at that moment the journal knows only that an
 * upload of (name, type) was in flight, not what it sent. Recovery must still end with exactly one
 * copy of each output, holding this attempt's bytes, and the journal must then name them.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openReadOnly } from '../../../src/agent/journal/index.js';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer } from '../../helpers/server.js';
import { createJob, downloadOutput, fastAgentOptions, importTemplate, shellTemplate, restartUntil, spawnAgent } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The journal's rows for job `pk`'s outputs, read beside a running (or dead) agent. */
function journalOutputs(path: string, pk: number) {
  const journal = openReadOnly(path);
  try {
    return journal.outputs(pk).map(({ name, state, size, sha256, attempts }) => ({ name, state, size, sha256, attempts }));
  } finally {
    journal.close();
  }
}

for (const extensions of [true, false]) {
  describe(`an agent killed between an acknowledged upload and its journal record (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it("keeps exactly one copy of each output, with this attempt's bytes, and records them after recovery", async () => {
      const server = await startTestServer({ extensions });
      const dir = await tempDir('ufdl-killed-upload-');
      const kept = join(dir, 'model.expected');
      // 8 MiB of random bytes: several upload chunks; a copy kept outside the job directory to compare.
      const script = `head -c 8388608 /dev/urandom > "$UFDL_OUTPUT_DIR/model.bin"\ncp "$UFDL_OUTPUT_DIR/model.bin" ${kept}\necho trained\n`;
      const template = await importTemplate(server, shellTemplate('killed-upload', script));
      const pk = await createJob(server, template);
      const options = fastAgentOptions(server, dir);
      const journalFile = options.journalFile!;

      // Two outputs (model.bin and the log) go up at once; the point fires when the second answers,
      // which is usually the large one. Whichever it is, it is on the server and not in the journal.
      const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'output-uploading:after-http#2' });
      expect(await first.exited, first.output().slice(-3000)).toEqual({ code: null, signal: 'SIGKILL' });
      const landed = ((await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).body as { outputs: { name: string }[] }).outputs;
      expect(landed.map((o) => o.name).sort()).toEqual(['log', 'model.bin']);
      const unrecorded = journalOutputs(journalFile, pk).filter((o) => o.state === 'uploading');
      expect(unrecorded).toHaveLength(1);
      const killed = unrecorded[0]!;
      expect(killed.attempts).toBe(1);
      // The upload hashed the large file as it sent it: nothing of it was known before the answer.
      if (killed.name === 'model.bin') expect(killed).toMatchObject({ size: null, sha256: null });

      const { job, agent: second } = await restartUntil(server, pk, options);

      expect(job.error_reason, second.output().slice(-3000)).toBeNull();
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'model.bin']);
      const expected = await readFile(kept);
      expect(sha256(await downloadOutput(server, pk, 'model.bin'))).toBe(sha256(expected));
      const log = await downloadOutput(server, pk, 'log');
      expect(log.toString()).toContain('trained');
      // The copy that landed before the crash was recognised as this attempt's, not sent twice.
      expect(second.output()).toContain('an earlier try of this attempt landed');
      const recorded = journalOutputs(journalFile, pk);
      expect(recorded.find((o) => o.name === 'model.bin')).toMatchObject({ state: 'uploaded', size: expected.length, sha256: sha256(expected) });
      expect(recorded.find((o) => o.name === 'log')).toMatchObject({ state: 'uploaded', size: log.length, sha256: sha256(log) });
      expect(recorded.find((o) => o.name === killed.name)!.attempts).toBe(2);
    });
  });
}
