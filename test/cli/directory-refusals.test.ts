/**
 * A directory the command must create and cannot (the server's data directory, the agent's work or
 * journal directory) stops it with one line naming the path and why, and exit status 73
 * (EX_CANTCREAT). Under /proc, the command used to spin at full CPU for ever without a word: Node
 * 20's recursive mkdir retries without end when a mkdir there answers ENOENT.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError } from './commands-support.js';

describe('a directory that cannot be created', () => {
  it('stops serve and standalone with EX_CANTCREAT, naming the data directory', async () => {
    await buildOnce();
    const port = String(await freePort());
    const serve = await cli(['serve', '--data', '/proc/ufdl-data', '--port', port]);
    expectOneLineError(serve, EXIT.CANTCREAT, /^ufdl-agent: cannot create the directory \/proc\/ufdl-data: this file system does not allow a directory there/);
    const file = join(await tempDir('ufdl-dir-refusal-'), 'data');
    writeFileSync(file, '');
    // standalone keeps the server's data in `<data>/server`.
    const standalone = await cli(['standalone', '--data', file, '--port', port]);
    expectOneLineError(standalone, EXIT.CANTCREAT, new RegExp(`^ufdl-agent: cannot create the directory ${file}/server \\(at ${file}\\): a part of the path is a file, not a directory$`));
  });

  it('stops run with EX_CANTCREAT, naming the work or journal directory', async () => {
    await buildOnce();
    const env = { UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_SERVER_URL: `http://127.0.0.1:${await freePort()}` };
    const work = await cli(['run', '--work-dir', '/proc/ufdl-work'], { env });
    expectOneLineError(work, EXIT.CANTCREAT, /^ufdl-agent: cannot create the directory \/proc\/ufdl-work: this file system does not allow a directory there/);
    const dir = await tempDir('ufdl-dir-refusal-');
    const journal = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...env, UFDL_AGENT_JOURNAL: '/proc/ufdl-state/journal.db' } });
    expect(journal.code, journal.stderr).toBe(EXIT.CANTCREAT);
    expect(journal.stderr).toMatch(/cannot create the directory \/proc\/ufdl-state: this file system does not allow a directory there/);
  });
});
