/**
 * Lists whose filter searches text run off the event loop (`store/text-searches.ts`): while one runs,
 * the server answers everyone else; one per user at a time, under a time limit, and a reader thread
 * that dies costs its search only. The searches are held on the reader thread by its test hook (a
 * hold file, `UFDL_SERVER_SEARCH_HOLD`) until the test releases them: nothing here is timed.
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { FilterSpec } from '../../src/protocol/filter.js';
import { prepareJobList } from '../../src/server/store/lists.js';
import { SEARCH_HOLD_ENV, SQLITE_SEARCH_GUARD, type GuardedSql, type TextSearches } from '../../src/server/store/text-searches.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import type { ServerOptions } from '../../src/server/options.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

/** A server whose reader thread holds every search while the hold file exists. */
async function heldServer(options: Partial<ServerOptions> = {}) {
  const hold = join(await tempDir('ufdl-search-hold-'), 'hold');
  process.env[SEARCH_HOLD_ENV] = hold;
  try {
    const f = await startWithFixtures(options);
    return {
      f,
      /** Hold the searches that start from now on. */
      hold: () => writeFile(hold, ''),
      /** Resolves once a search is being held on the reader thread. */
      held: () => until(() => existsSync(`${hold}.held`), 20_000, 'a search held on the reader thread'),
      release: () => rm(hold, { force: true }),
      /** Make the reader thread exit where it holds its search. */
      kill: () => writeFile(hold, 'exit'),
    };
  } finally {
    delete process.env[SEARCH_HOLD_ENV];
  }
}

const needle = (sub_string = 'NEEDLE'): FilterSpec => ({
  expressions: [{ type: 'contains', field: 'description', sub_string, case_insensitive: true }],
});

const pks = (body: unknown) => (body as Array<{ pk: number }>).map((row) => row.pk);

/** Whether `promise` has settled, without waiting for it. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  void promise.finally(() => {
    settled = true;
  });
  return { promise, settled: () => settled };
}

describe.skipIf(STORE_UNDER_TEST === 'postgres')('text searches on SQLite', () => {
  it('run off the event loop: while a search runs, the server answers other requests', async () => {
    const { f, hold, held, release } = await heldServer();
    const found = f.job({ description: 'a needle in a haystack' });
    const other = f.job({ description: 'hay only' });
    await hold();
    const search = tracked(f.call('POST', '/v1/jobs/list', { json: needle() }));
    await held();
    expect((await f.call('GET', `/v1/jobs/${other}`)).status).toBe(200);
    const cheap = await f.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'exact', field: 'pk', value: other }] } });
    expect(pks(cheap.body)).toEqual([other]);
    expect(search.settled()).toBe(false);
    await release();
    const res = await search.promise;
    expect(res.status).toBe(200);
    expect(pks(res.body)).toEqual([found]);
  });

  it('run the template list off the event loop too', async () => {
    const { f, hold, held, release } = await heldServer();
    const template = f.template('needle-template');
    f.template('other-template');
    await hold();
    const search = tracked(f.call('POST', '/v1/job-templates/list', { json: { expressions: [{ type: 'contains', field: 'name', sub_string: 'needle' }] } }));
    await held();
    expect((await f.call('GET', `/v1/job-templates/${template}`)).status).toBe(200);
    expect(search.settled()).toBe(false);
    await release();
    expect(pks((await search.promise).body)).toEqual([template]);
  });

  it('one per user at a time: a second one while the first runs is a 429; other users queue', async () => {
    const { f, hold, held, release } = await heldServer();
    const found = f.job({ description: 'needle' });
    const alice = await f.user();
    const bob = await f.user();
    await hold();
    const first = f.call('POST', '/v1/jobs/list', { as: alice, json: needle() });
    await held();
    const second = await f.call('POST', '/v1/jobs/list', { as: alice, json: needle('N') });
    expect(second.status).toBe(429);
    expect(second.body.detail).toMatch(/one such list at a time per user/);
    // The template list shares the bound: it is the same reader.
    expect((await f.call('POST', '/v1/job-templates/list', { as: alice, json: needle() })).status).toBe(429);
    // Alice's lists without a text search are not bounded.
    expect((await f.call('POST', '/v1/jobs/list', { as: alice, json: {} })).status).toBe(200);
    const bobs = f.call('POST', '/v1/jobs/list', { as: bob, json: needle() });
    await release();
    for (const res of [await first, await bobs]) {
      expect(res.status).toBe(200);
      expect(pks(res.body)).toEqual([found]);
    }
    // Answered: Alice may search again.
    expect((await f.call('POST', '/v1/jobs/list', { as: alice, json: needle() })).status).toBe(200);
  });

  it('are abandoned past serve.search_time_limit with a 503 naming it; the reader goes on', async () => {
    const { f, hold, held, release } = await heldServer({ searchTimeLimitSeconds: 0.2 });
    const found = f.job({ description: 'needle' });
    await hold();
    const search = f.call('POST', '/v1/jobs/list', { json: needle() });
    await held();
    const res = await search;
    expect(res.status).toBe(503);
    expect(res.body.detail).toMatch(/took longer than the server allows \(serve\.search_time_limit = 0\.2\) and was abandoned/);
    await release();
    const again = await f.call('POST', '/v1/jobs/list', { json: needle() });
    expect(again.status).toBe(200);
    expect(pks(again.body)).toEqual([found]);
  });

  it('fail with a 503 when the reader thread dies, and the next search starts a new one', async () => {
    const { f, hold, held, release, kill } = await heldServer();
    const found = f.job({ description: 'needle' });
    await hold();
    const search = f.call('POST', '/v1/jobs/list', { json: needle() });
    await held();
    await kill();
    const res = await search;
    expect(res.status).toBe(503);
    expect(res.body.detail).toMatch(/thread running the list's text search stopped during the search; it is restarted: retry/);
    await release();
    expect((await f.call('GET', `/v1/jobs/${found}`)).status).toBe(200);
    const again = await f.call('POST', '/v1/jobs/list', { json: needle() });
    expect(again.status).toBe(200);
    expect(pks(again.body)).toEqual([found]);
  });

  it('check their time limit for every row they look at, whatever order SQLite joins the tables in', async () => {
    // A filter with an indexed term on the template makes SQLite read the template first and its jobs
    // in an inner loop. A check that depends on no table is coded once, outside every loop: the
    // contains over every job of the template then ran unchecked, past the limit and past the
    // termination of its thread (which cannot stop SQLite's C code), for as long as it took.
    const f = await startWithFixtures();
    const template = f.template('searched');
    f.template('other');
    const jobs = f.jobs(30, { template, description: 'hay' });
    let captured: { sql: GuardedSql; params: readonly unknown[] } | undefined;
    const capture: TextSearches = {
      async all<T>(_user: number, sql: GuardedSql, params: readonly unknown[]): Promise<T[]> {
        captured = { sql, params };
        return [];
      },
      async close() {},
    };
    const spec: FilterSpec = {
      expressions: [
        { type: 'exact', field: 'template', value: template },
        { type: 'contains', field: 'description', sub_string: 'NEEDLE', case_insensitive: true },
      ],
    };
    await prepareJobList(f.db, spec).search(capture, 0);
    let checks = 0;
    f.db.function('ufdl_search_deadline', { deterministic: false, varargs: true }, () => {
      checks++;
      return 1;
    });
    const sql = captured!.sql(SQLITE_SEARCH_GUARD);
    expect(f.db.prepare(sql).all(...captured!.params)).toEqual([]);
    expect(checks).toBeGreaterThanOrEqual(jobs.length);
  });

  it('take a time limit beyond what a timer holds (about 24.8 days) as that long, not as none at all', async () => {
    // setTimeout takes a delay above 2^31 - 1 ms as 1 ms: every search was abandoned at once.
    const { f, hold, held, release } = await heldServer({ searchTimeLimitSeconds: 1e9 });
    const found = f.job({ description: 'needle' });
    await hold();
    const search = tracked(f.call('POST', '/v1/jobs/list', { json: needle() }));
    await held();
    expect(search.settled()).toBe(false);
    await release();
    const res = await search.promise;
    expect(res.status).toBe(200);
    expect(pks(res.body)).toEqual([found]);
  });

  it('see every write answered before them', async () => {
    const { f } = await heldServer();
    const job = f.job({ description: 'hay' });
    expect((await f.call('PATCH', `/v1/jobs/${job}`, { json: { description: 'now a needle' } })).status).toBe(200);
    expect(pks((await f.call('POST', '/v1/jobs/list', { json: needle() })).body)).toEqual([job]);
  });
});

describe.runIf(STORE_UNDER_TEST === 'postgres')('text searches on PostgreSQL', () => {
  it('take a time limit beyond what statement_timeout holds (about 24.8 days) as that long', async () => {
    // SET statement_timeout refuses more than 2^31 - 1 ms: every text search was a 500.
    const f = await startWithFixtures({ searchTimeLimitSeconds: 1e9 });
    const found = f.job({ description: 'needle' });
    const res = await f.call('POST', '/v1/jobs/list', { json: needle() });
    expect(res.status).toBe(200);
    expect(pks(res.body)).toEqual([found]);
  });

  it('are cancelled past serve.search_time_limit with the same 503, and the connection goes on', async () => {
    const f = await startWithFixtures({ searchTimeLimitSeconds: 0.2 });
    const found = f.job({ description: 'needle' });
    // The search is held by a lock on the jobs table that the test takes and keeps until the answer
    // has come: only the search's own time limit can end it (the connection's is 30 s, and its
    // cancellation would be a different error).
    const locker = new pg.Client({ connectionString: f.server.databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');
      const res = await f.call('POST', '/v1/jobs/list', { json: needle() });
      expect(res.status).toBe(503);
      expect(res.body.detail).toMatch(/took longer than the server allows \(serve\.search_time_limit = 0\.2\) and was abandoned/);
      await locker.query('ROLLBACK');
    } finally {
      await locker.end();
    }
    // The connection's own timeout is back: a search and a plain read go through.
    expect((await f.call('GET', `/v1/jobs/${found}`)).status).toBe(200);
    expect(pks((await f.call('POST', '/v1/jobs/list', { json: needle() })).body)).toEqual([found]);
  });
});
