/**
 * A data directory written by an earlier version is upgraded in place on start: hardware rows and
 * pks become the reference's (its nodes keep pointing at the right generation), and templates
 * imported with a licence name get that licence's pk.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MIGRATIONS } from '../../src/server/store/db.js';
import { REFERENCE_HARDWARE } from '../helpers/reference-backend.js';
import { Fixtures } from '../helpers/fixtures.js';
import { api, startTestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A database at schema version 2, seeded as that version did. */
function writeVersion2(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const migration of MIGRATIONS.slice(0, 2)) db.exec(migration);
  db.pragma('user_version = 2');
  const rows: [string, number, number][] = [
    ['Fermi', 2, 3], ['Kepler', 3, 5], ['Maxwell', 5, 6], ['Pascal', 6, 7], ['Volta', 7, 7.5], ['Turing', 7.5, 8],
    ['Ampere', 8, 8.9], ['Ada Lovelace', 8.9, 9], ['Hopper', 9, 10], ['Blackwell and newer', 10, 100],
  ];
  for (const row of rows) db.prepare('INSERT INTO hardware (generation, min_compute_capability, max_compute_capability) VALUES (?, ?, ?)').run(...row);
  const now = new Date().toISOString();
  const user = db.prepare("INSERT INTO users (username, password_hash, is_staff, date_joined) VALUES ('old', 'x', 1, ?)").run(now).lastInsertRowid;
  for (const [i, generation] of [[1, 7], [2, 8], [3, 9], [4, 10]] as const) {
    db.prepare(`INSERT INTO nodes (ip, "index", cpu_mem, hardware_generation, owner) VALUES ('10.0.0.1', ?, 1, ?, ?)`).run(i, generation, user);
  }
  for (const licence of ['Apache 2.0', 'MIT', 'Beerware']) {
    db.prepare(`INSERT INTO templates (name, version, licence, type, executor_class, creator, creation_time) VALUES (?, 1, ?, 'Run', 'ufdl_agent.Shell', ?, ?)`).run(
      `t-${licence}`,
      licence,
      user,
      now,
    );
  }
  db.close();
}

describe('upgrading a data directory of schema version 2', () => {
  it("rewrites the hardware table to the reference's and moves nodes along; gives templates licence pks", async () => {
    const dataDir = await tempDir('ufdl-migrate-');
    writeVersion2(join(dataDir, 'ufdl.sqlite3'));
    const server = await startTestServer({ dataDir });
    // No admin is created on a database that has users: act as the old user, with a token minted
    // with the server's own secret.
    const fixtures = new Fixtures(server);
    onTestFinished(() => fixtures.close());
    const token = await fixtures.token(1);
    const call = (path: string, json?: unknown) => api(server.url, json === undefined ? 'GET' : 'POST', path, { token, ...(json === undefined ? {} : { json }) });

    const hardware = (await call('/v1/hardware/list', {})).body as { pk: number; generation: string }[];
    expect(hardware.slice(0, 8)).toEqual(REFERENCE_HARDWARE);
    expect(hardware.slice(8).map((h) => [h.pk, h.generation])).toEqual([[9, 'Blackwell and newer']]);
    const nodes = (await call('/v1/nodes/list', { order_by: [{ field: 'index' }] })).body as { index: number; hardware_generation: number }[];
    // Ampere stays Ampere, Ada Lovelace becomes Ampere (as the reference maps 8.9), Hopper and Blackwell keep their generation.
    expect(nodes.map((n) => hardware.find((h) => h.pk === n.hardware_generation)!.generation)).toEqual(['Ampere', 'Ampere', 'Hopper', 'Blackwell and newer']);

    const templates = (await call('/v1/job-templates/list', { order_by: [{ field: 'pk' }] })).body as { name: string; licence: number | null }[];
    expect(templates.map((t) => [t.name, t.licence])).toEqual([['t-Apache 2.0', 2], ['t-MIT', 11], ['t-Beerware', null]]);
  });
});
