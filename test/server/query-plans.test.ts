/**
 * The queue at depth (a million ended jobs): the queries of the poll, of `ufdl-agent jobs`, of the
 * lost-node sweep and of the job gauges never read the whole jobs table. Checked on SQLite's own
 * plans (`EXPLAIN QUERY PLAN`); the server runs no ANALYZE, so these plans are the ones it uses
 * whatever the table holds. bench/depth.bench.mjs times them on a million rows.
 */
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { JOB_STATES, stateFilter } from '../../src/cli/job-state.js';
import { pollFilter, type FilterSpec } from '../../src/protocol/filter.js';
import { ALL_SQL, DELETED_SQL, ERRORED_SQL, UNENDED_PHASES_SQL } from '../../src/server/metrics.js';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { jobListSql, LISTED_OUTPUTS_SQL } from '../../src/server/store/lists.js';
import { STALLED_WORKFLOWS_SQL } from '../../src/server/store/stalled-workflows.js';
import { HELD_BY_LOST_NODES_SQL } from '../../src/server/sweeper.js';
import { tempDir } from '../helpers/temp-dir.js';

async function database(): Promise<Db> {
  const dir = await tempDir('ufdl-plans-');
  const db = openDatabase(join(dir, 'ufdl.sqlite3'));
  onTestFinished(async () => {
    db.close();
  });
  return db;
}

function plan(db: Db, sql: string, params: unknown[]): string[] {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((row) => row.detail);
}

/** Plan steps that read a whole table: a SCAN that uses no index at all. */
function fullScans(steps: string[]): string[] {
  return steps.filter((step) => /^SCAN (jobs|outputs|nodes|t|templates)$/.test(step));
}

/** The list `ufdl-agent jobs` asks for: newest first, at most `limit`. */
const newestFirst = (state?: (typeof JOB_STATES)[number]): FilterSpec => ({
  order_by: [{ field: 'pk', ascending: false }],
  ...(state === undefined ? {} : { expressions: stateFilter(state) }),
});

describe('query plans at depth', () => {
  it('polls through the queue index, with or without a limit, and checks one job by its pk', async () => {
    const db = await database();
    const { listSql, matchSql, params } = jobListSql(pollFilter());
    for (const [sql, bound] of [[listSql, params], [`${listSql} LIMIT ?`, [...params, 64]]] as const) {
      const steps = plan(db, sql, [...bound]);
      expect(steps[0], sql).toMatch(/^SEARCH jobs USING INDEX jobs_queue/);
      expect(fullScans(steps)).toEqual([]);
      expect(steps.join('\n')).not.toMatch(/TEMP B-TREE/);
    }
    expect(plan(db, matchSql, [...params, 1])[0]).toMatch(/^SEARCH jobs USING INTEGER PRIMARY KEY/);
  });

  it('lists jobs of a rare state (waiting, acquired, running, errored, cancelled) through an index', async () => {
    const db = await database();
    for (const state of ['created', 'acquired', 'running', 'errored', 'cancelled'] as const) {
      const { listSql, params } = jobListSql(newestFirst(state));
      const steps = plan(db, `${listSql} LIMIT ?`, [...params, 50]);
      expect(fullScans(steps), `${state}: ${steps.join(' | ')}`).toEqual([]);
    }
  });

  it('lists the newest jobs (all, or finished, the common state) by walking the table in pk order and stopping at the limit', async () => {
    const db = await database();
    for (const state of [undefined, 'finished'] as const) {
      const { listSql, params } = jobListSql(newestFirst(state));
      const steps = plan(db, `${listSql} LIMIT ?`, [...params, 50]);
      // A walk in pk order (the table's own order, no sorting of the whole result) that a LIMIT
      // ends after the newest matches: it reads the table only as far back as it must.
      expect(steps[0], `${state}: ${steps.join(' | ')}`).toMatch(/^SCAN jobs( USING INDEX jobs_unended)?$/);
      expect(steps.join('\n')).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('reads the outputs of listed jobs, the jobs of lost nodes and the job gauges without reading the whole history', async () => {
    const db = await database();
    expect(fullScans(plan(db, LISTED_OUTPUTS_SQL, ['[1,2,3]']))).toEqual([]);
    expect(plan(db, LISTED_OUTPUTS_SQL, ['[1,2,3]']).join('\n')).toMatch(/SEARCH outputs USING INDEX outputs_job/);
    const sweep = plan(db, HELD_BY_LOST_NODES_SQL, ['2030-01-01T00:00:00.000Z']);
    expect(sweep[0], sweep.join(' | ')).toMatch(/jobs USING INDEX jobs_unended/);
    expect(fullScans(sweep)).toEqual([]);
    const stalled = plan(db, STALLED_WORKFLOWS_SQL, []);
    expect(stalled[0], stalled.join(' | ')).toMatch(/jobs USING INDEX jobs_unended/);
    expect(stalled.join('\n')).toMatch(/SEARCH c USING INDEX jobs_children \(parent=\?\)/);
    expect(fullScans(stalled)).toEqual([]);
    for (const sql of [UNENDED_PHASES_SQL, ERRORED_SQL, DELETED_SQL]) expect(fullScans(plan(db, sql, [])), sql).toEqual([]);
    // Counting every row is SQLite's cheapest walk (the smallest index, page by page).
    expect(plan(db, ALL_SQL, [])[0]).toMatch(/^SCAN jobs USING COVERING INDEX/);
  });
});
