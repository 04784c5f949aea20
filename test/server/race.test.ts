/**
 * Concurrent acquirers (issue 2): every transition is one SQLite transaction, so nodes racing for the
 * same job get exactly one 200 between them and 406 for the rest, and no job is ever given twice.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { startWithFixtures } from '../helpers/fixtures.js';

describe('racing acquirers', () => {
  it('20 nodes acquiring one job at once: exactly one 200, nineteen 406', async () => {
    const f = await startWithFixtures();
    const nodes = Array.from({ length: 20 }, () => f.node());
    const job = f.job();
    await f.adminToken();
    const results = await Promise.all(nodes.map((node) => f.call('GET', `/v1/jobs/${job}/acquire`, { node })));
    const winners = results.flatMap((res, i) => (res.status === 200 ? [nodes[i]] : []));
    expect(winners).toHaveLength(1);
    const losers = results.filter((res) => res.status !== 200);
    expect(losers).toHaveLength(19);
    for (const res of losers) {
      expect(res.status).toBe(406);
      expect(res.body).toEqual({ detail: `Attempted to acquire job #${job} that has already been acquired` });
    }
    expect(f.jobRow(job)?.node).toBe(winners[0]);
  });

  it('20 nodes starting after racing: only the winner can start the job', async () => {
    const f = await startWithFixtures();
    const nodes = Array.from({ length: 20 }, () => f.node());
    const job = f.job();
    await Promise.all(nodes.map((node) => f.call('GET', `/v1/jobs/${job}/acquire`, { node })));
    const starts = await Promise.all(nodes.map((node) => f.call('POST', `/v1/jobs/${job}/start`, { node, json: {} })));
    expect(starts.filter((res) => res.status === 200)).toHaveLength(1);
    expect(starts.filter((res) => res.status === 403)).toHaveLength(19);
  });

  it('50 nodes polling and acquiring 500 jobs: every job acquired exactly once, no errors', async () => {
    const f = await startWithFixtures();
    const nodes = Array.from({ length: 50 }, () => f.node());
    const jobs = f.jobs(500);
    await f.adminToken();
    const wins = new Map<number, number[]>();
    const unexpected: string[] = [];

    // Each node: list the queue, try a few jobs near its head (so nodes collide), repeat until empty.
    const worker = async (node: number) => {
      for (;;) {
        // Listing needs no Node-Id; leaving it out spares a heartbeat write per poll.
        const list = await f.call('POST', '/v1/jobs/list', { json: pollFilter() });
        if (list.status !== 200) {
          unexpected.push(`list ${list.status} ${list.text}`);
          return;
        }
        const queue = (list.body as Array<{ pk: number }>).map((j) => j.pk);
        if (queue.length === 0) return;
        const head = queue.slice(0, 25);
        for (let i = 0; i < 2 && head.length > 0; i++) {
          const [pk] = head.splice(Math.floor(Math.random() * head.length), 1);
          const res = await f.call('GET', `/v1/jobs/${pk}/acquire`, { node });
          if (res.status === 200) {
            if (res.body.node !== node) unexpected.push(`job ${pk} acquired by ${node} but shows node ${res.body.node}`);
            wins.set(pk!, [...(wins.get(pk!) ?? []), node]);
          } else if (res.status !== 406) {
            unexpected.push(`acquire ${res.status} ${res.text}`);
          }
        }
      }
    };
    await Promise.all(nodes.map(worker));

    expect(unexpected).toEqual([]);
    expect([...wins.keys()].sort((a, b) => a - b)).toEqual(jobs);
    const twice = [...wins.entries()].filter(([, by]) => by.length !== 1);
    expect(twice).toEqual([]);
    // The database agrees with the answers.
    for (const [pk, [node]] of wins) expect(f.jobRow(pk)?.node).toBe(node);
    // The work was spread over many nodes, i.e. they really raced.
    expect(new Set([...wins.values()].map(([node]) => node)).size).toBeGreaterThan(10);
  }, 180_000);
});
