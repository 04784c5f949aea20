/**
 * What waiting list requests (`X-UFDL-Wait`) with many distinct filters cost each acquirable job, on
 * a real server: nodes that each skip other jobs share one query of their common filter per job, and
 * a user's distinct waiting filters are bounded (`serve.max_wait_filters_per_user`, and the limits
 * of one filter in all), so a hostile user cannot make every job cost thousands of queries — while a
 * cluster sharing one account, whatever its nodes skip, is held as before. Costs are counted with
 * the server's own metrics, not timed.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter, type Expression, type FilterSpec } from '../../src/protocol/filter.js';
import { TEXT_SEARCH_NOT_HELD } from '../../src/server/routes/jobs.js';
import { until } from '../helpers/wait.js';
import type { ApiResponse } from '../helpers/server.js';
import { startWithFixtures, type Fixtures, type TestUser } from '../helpers/fixtures.js';
import { serverMetric } from '../helpers/metrics.js';

const metric = serverMetric;

const waiting = (f: Fixtures) => metric(f, 'ufdl_server_list_waiting');
const checks = (f: Fixtures) => metric(f, 'ufdl_server_list_wait_checks_total');

/** The poll filter less `pks`, as a node skipping those jobs would send it. */
const skipping = (...pks: number[]): FilterSpec => ({
  ...pollFilter(),
  expressions: [...pollFilter().expressions!, ...pks.map((pk): Expression => ({ type: 'exact', field: 'pk', value: pk, invert: true }))],
});

/** A filter no job matches, distinct for each `i`. */
const never = (i: number): FilterSpec => ({ expressions: [{ type: 'exact', field: 'description', value: `never ${i}` }] });

interface Poll {
  node: number | undefined;
  answer: Promise<ApiResponse>;
}

/** A waiting list request, queued before this returns (so arrival order is known). */
async function queued(f: Fixtures, json: FilterSpec, options: { node?: number; as?: TestUser } = {}): Promise<Poll> {
  const before = await waiting(f);
  const answer = f.call('POST', '/v1/jobs/list', { ...options, json, headers: { 'x-ufdl-wait': '60' } });
  await until(async () => (await waiting(f)) === before + 1, 20_000, 'the poll waiting');
  return { node: options.node, answer };
}

/** Which of `polls` have been answered (without waiting for the others). */
async function answered(polls: Poll[]): Promise<number[]> {
  const done = new Set<number>();
  polls.forEach((p, i) => void p.answer.then(() => done.add(i)));
  await new Promise((resolve) => setImmediate(resolve));
  return [...done].sort((a, b) => a - b);
}

const pks = (res: ApiResponse) => (res.body as Array<{ pk: number }>).map((job) => job.pk);

describe('waiting list filters', () => {
  it('cost one query a job for nodes that each skip other jobs, and wake the longest waiter that does not skip it', async () => {
    const f = await startWithFixtures();
    // A job out of the queue (soft-deleted) that the first six nodes skip; reinstated, it becomes acquirable.
    const job = f.job();
    expect((await f.call('DELETE', `/v1/jobs/${job}`)).status).toBe(204);
    const polls: Poll[] = [];
    for (let i = 0; i < 12; i++) polls.push(await queued(f, i < 6 ? skipping(900_000 + i, job) : skipping(900_000 + i), { node: f.node() }));
    expect(await metric(f, 'ufdl_server_list_wait_bases')).toBe(1);
    const before = await checks(f);
    expect((await f.call('DELETE', `/v1/jobs/${job}/reinstate`)).status).toBe(200);
    // The list answer is the whole filter's true result: the job, which this node does not skip.
    expect(pks(await polls[6]!.answer)).toEqual([job]);
    // Taken at once, as an agent would (a node that let the 2-s offer grace pass would see it offered on).
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { node: polls[6]!.node! })).status).toBe(200);
    expect(await answered(polls)).toEqual([6]);
    expect((await checks(f)) - before).toBe(1);
    expect(await waiting(f)).toBe(11);
  });

  it("answer a user's waiting list at once beyond its allowance of distinct filters, and hold every list of a cluster sharing one account", async () => {
    const f = await startWithFixtures({ maxWaitFiltersPerUser: 3 });
    const mallory = await f.user();
    const held = [await queued(f, never(0), { as: mallory }), await queued(f, never(1), { as: mallory }), await queued(f, never(2), { as: mallory })];
    // A fourth distinct filter: the plain list answer, at once, saying why.
    const over = await f.call('POST', '/v1/jobs/list', { as: mallory, json: never(3), headers: { 'x-ufdl-wait': '60' } });
    expect(over.status).toBe(200);
    expect(over.body).toEqual([]);
    expect(over.headers.get('x-ufdl-wait-declined')).toBe(
      "this user's waiting list requests already use 3 distinct filters, the most allowed (serve.max_wait_filters_per_user)",
    );
    expect(await metric(f, 'ufdl_server_list_waits_declined_total')).toBe(1);
    // More lists on a filter she already waits on are held, skips and all.
    held.push(await queued(f, { expressions: [...never(1).expressions!, { type: 'exact', field: 'pk', value: 5, invert: true }] }, { as: mallory }));

    // A cluster on one account: every node polls, each skipping jobs of its own.
    const template = f.template('cluster');
    const cluster: Poll[] = [];
    for (let i = 0; i < 10; i++) cluster.push(await queued(f, i % 2 === 0 ? pollFilter() : skipping(800_000 + i), { node: f.node() }));
    expect(await waiting(f)).toBe(14);
    expect(await metric(f, 'ufdl_server_list_wait_bases')).toBe(4);
    expect(await metric(f, 'ufdl_server_list_waits_declined_total')).toBe(1);

    const before = await checks(f);
    const job = (await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } })).body.pk;
    expect(pks(await cluster[0]!.answer)).toEqual([job]);
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { node: cluster[0]!.node! })).status).toBe(200);
    // One query for each of her three filters (her waiters came first) and one for the whole cluster.
    expect((await checks(f)) - before).toBe(4);
    expect(await answered([...held, ...cluster])).toEqual([4]);
  });

  it('are declined when they search text: answered at once, never held for the hub to search each new job', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const searches: FilterSpec[] = [
      // Nothing matches: without the decline this would wait the whole minute.
      { expressions: [{ type: 'contains', field: 'description', sub_string: 'no job says this' }] },
      { expressions: [{ type: 'exact', field: 'description', value: 'NO JOB SAYS THIS', case_insensitive: true }] },
    ];
    for (const json of searches) {
      const res = await f.call('POST', '/v1/jobs/list', { json, headers: { 'x-ufdl-wait': '60' } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual([]);
      expect(res.headers.get('x-ufdl-wait-declined')).toBe(TEXT_SEARCH_NOT_HELD);
    }
    // A match is listed as without the header.
    const found = await f.call('POST', '/v1/jobs/list', {
      json: { expressions: [{ type: 'exact', field: 'pk', value: job }, { type: 'contains', field: 'template.name', sub_string: 'template' }] },
      headers: { 'x-ufdl-wait': '60' },
    });
    expect(pks(found)).toEqual([job]);
    expect(await waiting(f)).toBe(0);
    expect(await metric(f, 'ufdl_server_list_waits_declined_total')).toBe(3);
  });

  it('are not bounded with serve.max_wait_filters_per_user = 0', async () => {
    const f = await startWithFixtures({ maxWaitFiltersPerUser: 0 });
    const mallory = await f.user();
    for (let i = 0; i < 20; i++) await queued(f, never(i), { as: mallory });
    expect(await metric(f, 'ufdl_server_list_wait_bases')).toBe(20);
    expect(await metric(f, 'ufdl_server_list_waits_declined_total')).toBe(0);
  });
});
