/**
 * `ufdl-agent serve --database …` when the database cannot be used (issue 14): a bad URL or password
 * file is a configuration error (78), a database that cannot be reached is 69 (systemd restarts the
 * server); either way one line says what, and no password is ever shown.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli } from './commands-support.js';

describe('serve --database', () => {
  it('refuses a URL that is not PostgreSQL, and an unreadable password file, with the configuration status', async () => {
    const data = await tempDir('ufdl-serve-db-');
    const port = String(await freePort());
    const mysql = await cli(['serve', '--data', data, '--port', port, '--database', 'mysql://u:secret-1@db/x']);
    expect(mysql.code).toBe(EXIT.CONFIG);
    expect(mysql.stderr).toMatch(/serve\.database_url must start with postgres:\/\//);
    expect(mysql.stderr + mysql.stdout).not.toContain('secret-1');

    const noFile = await cli(['serve', '--data', data, '--port', port, '--database', 'postgres://u@127.0.0.1:1/x'], {
      env: { UFDL_AGENT_SERVE_DATABASE_PASSWORD_FILE: join(data, 'no-such-file') },
    });
    expect(noFile.code).toBe(EXIT.CONFIG);
    expect(noFile.stderr).toMatch(/cannot read serve\.database_password_file .*no-such-file: ENOENT/);
  });

  it('exits 69 with one line when the database cannot be reached, never showing the password', async () => {
    const data = await tempDir('ufdl-serve-db-');
    const closed = await freePort();
    const res = await cli(['serve', '--data', data, '--port', String(await freePort()), '--database', `postgres://u:secret-2@127.0.0.1:${closed}/x`]);
    expect(res.code).toBe(EXIT.UNAVAILABLE);
    expect(res.stderr).toMatch(/cannot use the PostgreSQL database: .*ECONNREFUSED/);
    expect(res.stderr + res.stdout).not.toContain('secret-2');
  });

  it('exits 69 after the connect timeout when the database host takes the connection and never answers', async () => {
    // A firewall that drops packets, or a server stuck before it speaks: without a timeout the start
    // waited for the kernel to give up, minutes later, without a word.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const { port } = silent.address() as AddressInfo;
    const data = await tempDir('ufdl-serve-db-');
    const res = await cli(['serve', '--data', data, '--port', String(await freePort()), '--database', `postgres://u:secret-3@127.0.0.1:${port}/x`], { timeoutMs: 90_000 });
    expect(res.code).toBe(EXIT.UNAVAILABLE);
    expect(res.stderr).toMatch(/cannot use the PostgreSQL database: .*connection timeout/);
    expect(res.stderr + res.stdout).not.toContain('secret-3');
  });
});
