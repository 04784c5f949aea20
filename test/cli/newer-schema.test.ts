/**
 * A database or journal written by a newer ufdl-agent (an upgrade rolled back, or another
 * installation's files): `serve` and `run` refuse to open it, as they must, with the configuration
 * status (78, which systemd does not restart: this version would refuse it again) and one line that
 * says what to do. Both exited 70 ("a bug") with a stack trace.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { freePort, startTestServer, ADMIN_PASSWORD, ADMIN_USER } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError } from './commands-support.js';

/** A SQLite file at `path` whose schema version is far past any this version knows. */
function writeFromTheFuture(path: string, applicationId?: number): void {
  const db = new Database(path);
  db.exec('CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  if (applicationId !== undefined) db.pragma(`application_id = ${applicationId}`);
  db.pragma('user_version = 9999');
  db.close();
}

describe('files of a newer ufdl-agent', () => {
  it('serve refuses a database of a newer version with the configuration status, saying what to do', async () => {
    await buildOnce();
    const data = await tempDir('ufdl-newer-db-');
    writeFromTheFuture(join(data, 'ufdl.sqlite3'));
    const res = await cli(['serve', '--data', data, '--port', String(await freePort())]);
    expectOneLineError(
      res,
      EXIT.CONFIG,
      /^ufdl-agent: the database was written by a newer ufdl-agent \(schema 9999, this version knows \d+\); refusing to open it: run the ufdl-agent version that wrote it \(or a newer one\), or check serve\.data_dir \/ serve\.database_url$/,
    );
  });

  it('run refuses a journal of a newer version with the configuration status, naming agent.journal', async () => {
    await buildOnce();
    const server = await startTestServer();
    const dir = await tempDir('ufdl-newer-journal-');
    await mkdir(join(dir, 'work'));
    const journal = join(dir, 'journal.sqlite3');
    // The journal's own application id: a journal, of a schema this version does not know.
    const { APPLICATION_ID } = await import('../../src/agent/journal/schema.js');
    writeFromTheFuture(journal, APPLICATION_ID);
    const res = await cli(['run'], {
      env: {
        UFDL_AGENT_SERVER_URL: server.url,
        UFDL_AGENT_SERVER_USERNAME: ADMIN_USER,
        UFDL_AGENT_SERVER_PASSWORD: ADMIN_PASSWORD,
        UFDL_AGENT_WORK_DIR: join(dir, 'work'),
        UFDL_AGENT_JOURNAL: journal,
        UFDL_AGENT_STATUS_PORT: '-1',
      },
    });
    expectOneLineError(
      res,
      EXIT.CONFIG,
      /^ufdl-agent: The journal .*journal\.sqlite3 was written by a newer ufdl-agent \(schema 9999, this version knows \d+\); refusing to open it; check agent\.journal/,
    );
  });
});
