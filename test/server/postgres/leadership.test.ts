/**
 * One replica at a time leads (the lost-node sweep): of three replicas exactly one holds the lock;
 * when the leader's connection is killed, or the leader closes, another takes over.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PASSWORD_ENV, openPool } from '../../../src/server/store/postgres/connection.js';
import { AdvisoryLeadership } from '../../../src/server/store/postgres/leadership.js';
import { TcpProxy } from '../../faults/helpers/proxy.js';
import { PG_PASSWORD, usePgCluster } from '../../helpers/postgres.js';
import { until } from '../../helpers/wait.js';

const cluster = usePgCluster();
const pools: pg.Pool[] = [];
const leaderships: AdvisoryLeadership[] = [];
const log = { info: () => {}, warn: () => {} };
const KEY = [0x7566646c, 0x73776570] as const;

async function pool(url: string): Promise<pg.Pool> {
  const p = await openPool({ url }, () => {}, { [PASSWORD_ENV]: PG_PASSWORD });
  pools.push(p);
  return p;
}

async function replica(url: string): Promise<AdvisoryLeadership> {
  const leadership = await AdvisoryLeadership.start(await pool(url), { key: KEY, checkMs: 100, log, what: 'sweep' });
  leaderships.push(leadership);
  return leadership;
}

describe('advisory leadership', () => {
  it('lets one of three replicas lead, and moves to another when the leader dies or leaves', async () => {
    const url = await cluster.get().createDatabase(`lead_${randomUUID().replaceAll('-', '')}`);
    const replicas = await Promise.all([replica(url), replica(url), replica(url)]);
    const leaders = () => replicas.filter((r) => r.isLeader());
    expect(leaders()).toHaveLength(1);
    const first = leaders()[0]!;

    // The leader's connection dies (as when its process is SIGKILLed or its network goes).
    const admin = await pool(url);
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted",
      [KEY[0], KEY[1]],
    );
    await until(() => !first.isLeader());
    await until(() => leaders().length === 1);
    const second = leaders()[0]!;
    // Never two at once from here on, whoever won the race.
    expect(leaders()).toHaveLength(1);

    await second.close();
    await until(() => leaders().length === 1 && !second.isLeader());
    expect(leaders()).toHaveLength(1);
  });

  it('moves from a frozen leader to another replica: the database ends the silent session', async () => {
    // A leader whose process is SIGSTOPped (or its VM paused): its kernel keeps the connection open,
    // and it makes no check. With a session's lock it led on, and no replica swept, until it resumed.
    const url = await cluster.get().createDatabase(`lead_${randomUUID().replaceAll('-', '')}`);
    const frozen = await AdvisoryLeadership.start(await pool(url), { key: KEY, checkMs: 3_600_000, silentLeaderMs: 1_000, log, what: 'sweep' });
    leaderships.push(frozen);
    expect(frozen.isLeader()).toBe(true);
    const other = await replica(url);
    expect(other.isLeader()).toBe(false);
    await until(() => other.isLeader(), 30_000, 'another replica to lead once the frozen one is silent too long');
  });

  it('stops leading when its connection goes silent, and closes without waiting for it', async () => {
    // A network that drops packets rather than resetting: the held connection raises no error, so
    // only a check with a time limit finds out; without one the replica led on, unable to sweep, and
    // its close waited for the kernel to give up on the connection.
    const url = new URL(await cluster.get().createDatabase(`lead_${randomUUID().replaceAll('-', '')}`));
    const proxy = await TcpProxy.start({ port: Number(url.port) });
    try {
      url.port = String(proxy.port);
      const leadership = await AdvisoryLeadership.start(await pool(url.toString()), { key: KEY, checkMs: 100, statementTimeoutMs: 500, log, what: 'sweep' });
      expect(leadership.isLeader()).toBe(true);
      proxy.setMode('drop');
      await until(() => !leadership.isLeader(), 30_000, 'the silent leader to stop leading');
      let closed = false;
      const closing = leadership.close().then(() => (closed = true));
      await until(() => closed, 30_000, 'the close to return');
      await closing;
    } finally {
      await proxy.close();
    }
  });
});

afterAll(async () => {
  for (const leadership of leaderships) await leadership.close();
  await Promise.all(pools.map((p) => p.end()));
});
