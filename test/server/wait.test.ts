/**
 * The `X-UFDL-Wait` extension of `POST /v1/jobs/list` (an extension: docs/COMPATIBILITY.md, Extensions): an empty list is held until a job
 * may have become acquirable or the wait ends. Latencies are recorded; the assertions leave generous
 * slack for a loaded machine (the 100 ms target is measured by bench/, not here).
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { parseWaitHeader } from '../../src/server/wait.js';
import { until } from '../helpers/agent.js';
import { api, type ApiResponse } from '../helpers/server.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { serverMetric } from '../helpers/metrics.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A poll with the reference worker's filter, holding for up to `seconds`. */
async function waitingPoll(f: Fixtures, seconds: string, json: unknown = pollFilter()) {
  const started = Date.now();
  const res = await f.call('POST', '/v1/jobs/list', { json, headers: { 'x-ufdl-wait': seconds } });
  return { ...res, elapsedMs: Date.now() - started, doneAt: Date.now() };
}

describe('X-UFDL-Wait', () => {
  it('answers at once when the list is not empty', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const res = await waitingPoll(f, '30');
    expect(res.status).toBe(200);
    expect(res.body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    expect(res.elapsedMs).toBeLessThan(5_000);
  });

  it('returns a job created through create-job soon after it is created', async () => {
    const f = await startWithFixtures();
    const template = f.template('waitable');
    const poll = waitingPoll(f, '30');
    // Let the poll reach the server and start waiting.
    await sleep(300);
    const createdAt = Date.now();
    const created = await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } });
    expect(created.status).toBe(200);
    const res = await poll;
    expect(res.status).toBe(200);
    expect(res.body.map((j: { pk: number }) => j.pk)).toEqual([created.body.pk]);
    const latencyMs = res.doneAt - createdAt;
    console.info(`X-UFDL-Wait: list answered ${latencyMs} ms after create-job was sent`);
    expect(latencyMs).toBeLessThan(1_000);
  });

  it('wakes on release, reset and abort, each making a job acquirable', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    const byPk = { expressions: [{ type: 'and', sub_expressions: [{ type: 'exact', field: 'pk', value: job }, { type: 'isnull', field: 'node' }] }] };
    // Reset keeps the job with its node; this filter matches it once it is back to CREATED.
    const unstarted = { expressions: [{ type: 'and', sub_expressions: [{ type: 'exact', field: 'pk', value: job }, { type: 'isnull', field: 'start_time' }] }] };
    const trigger = async (step: () => Promise<unknown>, label: string, filter: unknown = byPk) => {
      const poll = waitingPoll(f, '30', filter);
      await sleep(300);
      const at = Date.now();
      await step();
      const res = await poll;
      expect(res.status, label).toBe(200);
      expect(res.body.map((j: { pk: number }) => j.pk), label).toEqual([job]);
      console.info(`X-UFDL-Wait: woke ${res.doneAt - at} ms after ${label}`);
      expect(res.doneAt - at, label).toBeLessThan(1_000);
    };
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    await trigger(() => f.call('DELETE', `/v1/jobs/${job}/release`, { node }), 'release');
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    await trigger(() => f.call('DELETE', `/v1/jobs/${job}/reset`, { node }), 'reset', unstarted);
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: {} });
    await trigger(() => f.call('DELETE', `/v1/jobs/${job}/abort`), 'abort');
  });

  it('returns [] when the wait ends with no job, after about the requested time', async () => {
    const f = await startWithFixtures();
    const res = await waitingPoll(f, '0.5');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(450);
    expect(res.elapsedMs).toBeLessThan(10_000);
  });

  it('keeps waiting when a wake-up brings no matching job', async () => {
    const f = await startWithFixtures();
    const template = f.template('other');
    const filter = { expressions: [{ type: 'exact', field: 'description', value: 'never' }] };
    const poll = waitingPoll(f, '1', filter);
    await sleep(200);
    await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {}, description: 'other' } });
    const res = await poll;
    expect(res.body).toEqual([]);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(950);
  });

  it('rejects a malformed header with 400, and caps large values instead of refusing them', async () => {
    const f = await startWithFixtures();
    for (const value of ['abc', '-1', '1s', '']) {
      const res = await f.call('POST', '/v1/jobs/list', { json: {}, headers: { 'x-ufdl-wait': value } });
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.body.detail).toMatch(/X-UFDL-Wait/);
    }
    f.job();
    expect((await f.call('POST', '/v1/jobs/list', { json: {}, headers: { 'x-ufdl-wait': '3600' } })).status).toBe(200);
  });

  it('checks the filter before waiting: an unknown field is a 400 at once', async () => {
    const f = await startWithFixtures();
    const res = await waitingPoll(f, '30', { expressions: [{ type: 'isnull', field: 'bogus' }] });
    expect(res.status).toBe(400);
    expect(res.elapsedMs).toBeLessThan(5_000);
  });

  it('is ignored in strict-reference mode (extensions off), malformed values included', async () => {
    const f = await startWithFixtures({ extensions: false });
    const res = await waitingPoll(f, '30');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
    expect(res.elapsedMs).toBeLessThan(5_000);
    expect((await f.call('POST', '/v1/jobs/list', { json: {}, headers: { 'x-ufdl-wait': 'abc' } })).status).toBe(200);
  });

  it('lets the server close promptly while a list request is waiting', async () => {
    const f = await startWithFixtures();
    const token = await f.adminToken();
    const poll = api(f.url, 'POST', '/v1/jobs/list', { token, json: pollFilter(), headers: { 'x-ufdl-wait': '60' } }).catch((err: unknown) => err);
    await sleep(300);
    const started = Date.now();
    await f.server.close();
    const closeMs = Date.now() - started;
    const res = await poll;
    expect(closeMs).toBeLessThan(10_000);
    // The waiting request is answered (with the empty list) rather than cut off.
    expect(res).toMatchObject({ status: 200, body: [] });
  });
});

const metric = serverMetric;

const waiting = (f: Fixtures) => metric(f, 'ufdl_server_list_waiting');

/** `count` nodes each holding a poll, queued one after the other (so their arrival order is known). */
async function queuedPolls(f: Fixtures, count: number) {
  const polls: Array<{ node: number; answer: Promise<ApiResponse> }> = [];
  for (let i = 0; i < count; i++) {
    const node = f.node();
    const answer = f.call('POST', '/v1/jobs/list', { node, json: pollFilter(), headers: { 'x-ufdl-wait': '60' } });
    polls.push({ node, answer });
    await until(async () => (await waiting(f)) === i + 1, 20_000, `poll ${i + 1} waiting`);
  }
  return polls;
}

/** Which of `polls` have been answered (without waiting for the others). */
async function answered<T>(polls: Array<{ answer: Promise<T> }>): Promise<number[]> {
  const done = new Set<number>();
  polls.forEach((p, i) => void p.answer.then(() => done.add(i)));
  await new Promise((resolve) => setImmediate(resolve));
  return [...done].sort((a, b) => a - b);
}

describe('X-UFDL-Wait wakes one node per job', () => {
  it('answers one waiting poll per created job, the longest-waiting first, and keeps the others waiting', async () => {
    const f = await startWithFixtures();
    const template = f.template('herd');
    const polls = await queuedPolls(f, 6);
    const created: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } });
      created.push(res.body.pk);
      // The woken node takes its job before the next one is created, as an agent would.
      const woken = polls[i]!;
      const answer = await woken.answer;
      expect(answer.body.map((j: { pk: number }) => j.pk)).toEqual([created[i]]);
      expect((await f.call('GET', `/v1/jobs/${created[i]}/acquire`, { node: woken.node })).status).toBe(200);
    }
    expect(await waiting(f)).toBe(3);
    expect(await answered(polls)).toEqual([0, 1, 2]);
    expect(await metric(f, 'ufdl_server_list_wakeups_total')).toBe(3);
  });

  it('passes a job on to the next node when the woken one lists again without taking it', async () => {
    const f = await startWithFixtures();
    const template = f.template('skipped');
    const [first, second] = await queuedPolls(f, 2);
    const job = (await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } })).body.pk;
    expect((await first!.answer).body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    expect(await answered([first!, second!])).toEqual([0]);
    // The first node cannot run it (wrong executor, say) and polls again: the second node is woken
    // for the job, and the first one's poll is held rather than racing it for the job.
    const again = f.call('POST', '/v1/jobs/list', { node: first!.node, json: pollFilter(), headers: { 'x-ufdl-wait': '1' } });
    expect((await second!.answer).body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { node: second!.node })).status).toBe(200);
    expect((await again).body).toEqual([]);
  });

  it('holds a poll whose wait ran out while its only job is being handed to the woken node', async () => {
    const f = await startWithFixtures();
    const template = f.template('handed');
    const [woken] = await queuedPolls(f, 1);
    const job = (await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } })).body.pk;
    expect((await woken!.answer).body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    // Another node's wait runs out before the woken node has acquired: answering it with the job
    // would only make it race the woken node (one more list answer, one more acquire, per job).
    const started = Date.now();
    const late = waitingPoll(f, '0.3');
    await until(() => Date.now() - started > 800, 5_000, 'the late poll past its wait');
    expect((await f.call('GET', `/v1/jobs/${job}/acquire`, { node: woken!.node })).status).toBe(200);
    const res = await late;
    expect(res.body).toEqual([]);
    expect(res.elapsedMs).toBeGreaterThanOrEqual(800);
  });

  it('never wakes a poll whose client went away', async () => {
    const f = await startWithFixtures();
    const template = f.template('departed');
    const token = await f.adminToken();
    const controller = new AbortController();
    const departed = fetch(`${f.url}/v1/jobs/list`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-ufdl-wait': '60' },
      body: JSON.stringify(pollFilter()),
      signal: controller.signal,
    }).catch((err: unknown) => err);
    await until(async () => (await waiting(f)) === 1, 20_000, 'first poll waiting');
    const [present] = await queuedPolls(f, 1).catch(async () => {
      throw new Error(`second poll not queued (waiting: ${await waiting(f)})`);
    });
    controller.abort();
    await departed;
    await until(async () => (await waiting(f)) === 1, 20_000, 'departed poll removed');
    const job = (await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {} } })).body.pk;
    expect((await present!.answer).body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    expect(await metric(f, 'ufdl_server_list_wakeups_total')).toBe(1);
  });

  it('wakes a poll for a soft-deleted job that is reinstated, which lists it again', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    expect((await f.call('DELETE', `/v1/jobs/${job}`)).status).toBe(204);
    const poll = waitingPoll(f, '30');
    await until(async () => (await waiting(f)) === 1, 20_000, 'the poll waiting');
    expect((await f.call('DELETE', `/v1/jobs/${job}/reinstate`)).status).toBe(200);
    expect((await poll).body.map((j: { pk: number }) => j.pk)).toEqual([job]);
    // Woken for the job, not answered because its wait ran out.
    expect(await metric(f, 'ufdl_server_list_wakeups_total')).toBe(1);
  });

  it('holds many waiting polls without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const f = await startWithFixtures();
      const polls = Array.from({ length: 40 }, () => waitingPoll(f, '60'));
      await until(async () => (await waiting(f)) === 40, 30_000, '40 polls waiting');
      await f.server.close();
      for (const poll of polls) expect((await poll).body).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('X-UFDL-Limit', () => {
  it('answers with the first n jobs of the result, and waits as usual when there are none', async () => {
    const f = await startWithFixtures();
    const jobs = f.jobs(5);
    const head = await f.call('POST', '/v1/jobs/list', { json: pollFilter(), headers: { 'x-ufdl-limit': '2' } });
    expect(head.body.map((j: { pk: number }) => j.pk)).toEqual(jobs.slice(0, 2));
    const newest = await f.call('POST', '/v1/jobs/list', { json: { order_by: [{ field: 'pk', ascending: false }] }, headers: { 'x-ufdl-limit': '3' } });
    expect(newest.body.map((j: { pk: number }) => j.pk)).toEqual(jobs.slice(2).reverse());
    const none = await f.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'exact', field: 'description', value: 'never' }] }, headers: { 'x-ufdl-limit': '3', 'x-ufdl-wait': '0.2' } });
    expect(none.body).toEqual([]);
  });

  it('refuses a malformed value with 400, and is ignored in strict-reference mode', async () => {
    const f = await startWithFixtures();
    f.jobs(3);
    for (const value of ['0', '-1', 'x', '1.5', '', '99999999999']) {
      const res = await f.call('POST', '/v1/jobs/list', { json: {}, headers: { 'x-ufdl-limit': value } });
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.body.detail).toMatch(/X-UFDL-Limit/);
    }
    const strict = await startWithFixtures({ extensions: false });
    strict.jobs(3);
    expect((await strict.call('POST', '/v1/jobs/list', { json: {}, headers: { 'x-ufdl-limit': '1' } })).body).toHaveLength(3);
  });
});

describe('wait helpers', () => {
  it('parseWaitHeader reads seconds as milliseconds, caps at 60 s, and refuses anything else', () => {
    expect(parseWaitHeader(undefined)).toBe(0);
    expect(parseWaitHeader('0')).toBe(0);
    expect(parseWaitHeader(' 1.5 ')).toBe(1500);
    expect(parseWaitHeader('60')).toBe(60_000);
    expect(parseWaitHeader('3600')).toBe(60_000);
    for (const bad of ['', '-1', '1e3', 'x', '1,5']) expect(() => parseWaitHeader(bad), bad).toThrow(/X-UFDL-Wait/);
  });
});
