// A throw-away PostgreSQL cluster: initdb into a fresh temporary directory, started on a free
// loopback port with its socket in that directory, stopped and removed by `stop()`. Shared by the
// tests (test/helpers/postgres.ts) and the benchmarks (bench/lib/stores.mjs).
//
// Debian keeps the binaries in its per-version library directory (off PATH), and postgres refuses to
// run as root, so as root the cluster runs as the `postgres` system user. Host connections need the
// password (`scram-sha-256`), as a real deployment's would; `url` carries it.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PG_BIN = process.env.UFDL_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const PG_USER = 'ufdl';
export const PG_PASSWORD = 'pg-password-for-tests';

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(() => resolve()));
  return port;
}

/** Run a cluster binary, as `postgres` when we are root. */
async function asPostgres(binary, args) {
  const file = join(PG_BIN, binary);
  const rooted = process.getuid?.() === 0;
  const { stdout } = rooted ? await run('runuser', ['-u', 'postgres', '--', file, ...args]) : await run(file, args);
  return stdout;
}

async function postgresIds() {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Start the cluster on a free port; another process may take the port first, so try a few. */
async function startOnFreePort(data, dir, settings) {
  const extra = Object.entries(settings).map(([key, value]) => ` -c ${key}=${value}`).join('');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200${extra}`;
    try {
      await asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
      return port;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

/**
 * Start a cluster. `settings` are extra server settings (`-c key=value`), e.g. `{ shared_buffers: '256MB' }`.
 * Returns { url, port, dir, createDatabase(name) → url, stop() }.
 */
export async function startPgCluster({ settings = {} } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'ufdl-pg-'));
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  await writeFile(pwfile, `${PG_PASSWORD}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const { uid, gid } = await postgresIds();
    await chown(dir, uid, gid);
    await chown(pwfile, uid, gid);
  }
  await asPostgres('initdb', ['-D', data, '-U', PG_USER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-instructions']);
  const port = await startOnFreePort(data, dir, settings);
  const base = `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}`;
  let stopped = false;
  return {
    url: `${base}/postgres`,
    port,
    dir,
    // `lcCtype`: the database's character type (e.g. 'C.UTF-8'), where a test needs one whatever the
    // machine's locale, which initdb otherwise takes.
    async createDatabase(name, { lcCtype } = {}) {
      const ctype = lcCtype === undefined ? '' : ` TEMPLATE template0 LC_CTYPE '${lcCtype}'`;
      await asPostgres('psql', ['-h', dir, '-p', String(port), '-U', PG_USER, '-d', 'postgres', '-q', '-c', `CREATE DATABASE "${name}"${ctype}`]);
      return `${base}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
