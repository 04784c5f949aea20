/**
 * The journal's lock lives on a side file (`journal.sqlite3.lock`). Deleting it while an agent runs
 * (an operator "cleaning a stale lock") must not let a second agent in on the same journal: the
 * second start is refused, naming the running agent, which goes on untouched.
 */
import { rm } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { lockPathFor } from '../../../src/agent/journal/index.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { fastAgentOptions, spawnAgent } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('a journal whose lock file is deleted under a running agent', () => {
  it('refuses a second agent process, naming the first, which keeps running', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-lock-removed-');
    const options = fastAgentOptions(server, dir);
    const first = spawnAgent(options);
    await first.waitForLog((l) => l.msg === 'test agent running', 30_000);
    await rm(lockPathFor(options.journalFile!));

    const second = spawnAgent(options);
    // Either it is refused (exits) or it starts: whichever comes first decides, no clock involved.
    const verdict = await Promise.race([
      second.exited.then(() => 'exited' as const),
      second.waitForLog((l) => l.msg === 'test agent running', 30_000).then(() => 'running' as const, () => 'exited' as const),
    ]);
    expect(verdict, second.output().slice(-3000)).toBe('exited');
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.output()).toContain(`is in use by pid ${first.child.pid}`);
    expect(second.output()).toContain('was removed or replaced while that agent runs');

    expect(first.child.exitCode).toBeNull();
    first.kill('SIGTERM');
    expect(await first.exited, first.output().slice(-3000)).toEqual({ code: 0, signal: null });
  });
});
