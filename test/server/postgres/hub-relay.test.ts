/**
 * The notify hub across replicas over LISTEN/NOTIFY on a real PostgreSQL: what replica A's hub emits
 * reaches replica B's hub in the order A emitted it, never echoes back to A, and survives a message
 * over PostgreSQL's payload limit; a replica that hears another for the first time (either just
 * started) does not take that for missed events.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobNotification } from '../../../src/protocol/wire.js';
import { NotifyHub, type HubEvents } from '../../../src/server/notify-hub.js';
import type { JobRow } from '../../../src/server/store/job-json.js';
import { PASSWORD_ENV, openPool } from '../../../src/server/store/postgres/connection.js';
import { HubRelay, type HubRelayTimings } from '../../../src/server/store/postgres/hub-relay.js';
import { TcpProxy } from '../../faults/helpers/proxy.js';
import { PG_PASSWORD, usePgCluster } from '../../helpers/postgres.js';
import { until } from '../../helpers/wait.js';

const cluster = usePgCluster();
const closers: (() => Promise<void>)[] = [];
type RelayLog = Parameters<typeof HubRelay.start>[2];
const log: RelayLog = { warn: () => {}, error: () => {}, info: () => {} };

async function replica(url: string, relayLog: RelayLog = log, timings: HubRelayTimings = {}): Promise<{ hub: NotifyHub; relay: HubRelay }> {
  const pool = await openPool({ url }, () => {}, { [PASSWORD_ENV]: PG_PASSWORD });
  const hub = new NotifyHub();
  const relay = await HubRelay.start(pool, hub, relayLog, timings);
  closers.push(async () => {
    await relay.close();
    await pool.end();
  });
  return { hub, relay };
}

function message(pk: number, progress: number, description = 'job'): JobNotification {
  return { transition: 'progress', description, pk, progress, cancelled: false, transition_data: { progress } };
}

describe('the hub relay', () => {
  it("delivers replica A's events to replica B in order, and never back to A", async () => {
    const url = await cluster.get().createDatabase(`relay_${randomUUID().replaceAll('-', '')}`);
    const a = await replica(url);
    const b = await replica(url);
    const seenOnB: number[] = [];
    const seenOnA: number[] = [];
    const acquirableOnB: number[] = [];
    let resyncs = 0;
    b.hub.on('resync', () => resyncs++);
    b.hub.on('transition', (_pk, m) => seenOnB.push(m.progress));
    a.hub.on('transition', (_pk, m) => seenOnA.push(m.progress));
    b.hub.on('acquirable', (pk) => acquirableOnB.push(pk));
    const sent = Array.from({ length: 200 }, (_, i) => i / 200);
    for (const progress of sent) a.hub.emit('transition', 7, message(7, progress));
    a.hub.emit('acquirable', 8);
    await until(() => seenOnB.length === sent.length && acquirableOnB.length === 1);
    expect(seenOnB).toEqual(sent);
    expect(acquirableOnB).toEqual([8]);
    // A saw each of its own events once (emitted locally), none relayed back; B relays nothing on.
    expect(seenOnA).toEqual(sent);
    b.hub.emit('created', 9);
    const createdOnA: number[] = [];
    a.hub.on('created', (pk) => createdOnA.push(pk));
    await until(() => createdOnA.length === 1);
    expect(createdOnA).toEqual([9]);
    // A replica started after A had published hears A's numbers from the middle: no gap for it.
    const c = await replica(url);
    c.hub.on('resync', () => resyncs++);
    const acquirableOnC: number[] = [];
    c.hub.on('acquirable', (pk) => acquirableOnC.push(pk));
    a.hub.emit('acquirable', 10);
    a.hub.emit('acquirable', 11);
    await until(() => acquirableOnC.length === 2 && acquirableOnB.length === 3);
    expect(acquirableOnC).toEqual([10, 11]);
    expect(resyncs).toBe(0);
  });

  it('shortens a message over the payload limit instead of dropping it', async () => {
    const url = await cluster.get().createDatabase(`relay_${randomUUID().replaceAll('-', '')}`);
    const a = await replica(url);
    const b = await replica(url);
    const seen: JobNotification[] = [];
    b.hub.on('transition', (_pk, m) => seen.push(m));
    a.hub.emit('transition', 3, { ...message(3, 1, 'x'.repeat(20_000)), transition: 'error', error: 'e'.repeat(20_000) });
    await until(() => seen.length === 1);
    expect(seen[0]!.transition).toBe('error');
    expect(seen[0]!.description.startsWith('xxx')).toBe(true);
    expect(seen[0]!.error!.length).toBeLessThan(2000);
  });

  it("relays a deletion with the job's row, without its values (a hard-deleted job can be read nowhere)", async () => {
    const url = await cluster.get().createDatabase(`relay_${randomUUID().replaceAll('-', '')}`);
    const a = await replica(url);
    const b = await replica(url);
    const seen: HubEvents['deletion'][] = [];
    b.hub.on('deletion', (...args) => seen.push(args));
    const row: JobRow = {
      pk: 5,
      template: 2,
      parent: null,
      description: 'd'.repeat(20_000),
      input_values: JSON.stringify({ big: 'v'.repeat(20_000) }),
      parameter_values: '{}',
      node: 3,
      start_time: '2026-12-07T00:00:01.000Z',
      end_time: null,
      error_reason: null,
      progress_amount: 0.5,
      cancelled_unstarted: 0,
      creator: 1,
      creation_time: '2026-12-07T00:00:00.000Z',
      deletion_time: null,
      child_name: null,
      template_name: 't',
      template_version: 1,
      template_is_meta: 0,
    };
    a.hub.emit('deletion', 5, 'hard-delete', row);
    await until(() => seen.length === 1);
    const [pk, change, relayed] = seen[0]!;
    expect([pk, change]).toEqual([5, 'hard-delete']);
    const { input_values: _inputs, parameter_values: _parameters, description: _description, ...rest } = row;
    expect(relayed).toEqual({ ...rest, description: expect.stringMatching(/^d{1000}…$/) });
  });

  it('finds out that its listening connection went silent, and hears the others again on a new one', async () => {
    // A network that drops packets: the listener only receives, so nothing tells it the connection is
    // dead. Without the check it heard nothing from the other replicas until the kernel gave up.
    const url = new URL(await cluster.get().createDatabase(`relay_${randomUUID().replaceAll('-', '')}`));
    const a = await replica(url.toString());
    const proxy = await TcpProxy.start({ port: Number(url.port) });
    closers.push(() => proxy.close());
    url.port = String(proxy.port);
    const warnings: string[] = [];
    const b = await replica(url.toString(), { ...log, warn: ((_fields: unknown, message: string) => void warnings.push(message)) as RelayLog['warn'] }, { listenerCheckMs: 200, statementTimeoutMs: 500 });
    const heard: number[] = [];
    b.hub.on('acquirable', (pk) => heard.push(pk));
    a.hub.emit('acquirable', 1);
    await until(() => heard.includes(1), 20_000, 'B to hear A');

    proxy.setMode('drop');
    await until(() => warnings.some((m) => /lost the connection that hears the other replicas/.test(m)), 30_000, 'B to notice');
    // Connections made from now on pass; the dropped one stays dead.
    proxy.setMode('pass');
    let pk = 100;
    await until(() => {
      a.hub.emit('acquirable', ++pk);
      return heard.some((p) => p > 100);
    }, 60_000, 'B to hear A again', 250);
  }, 120_000);

  it('closes while it reconnects without keeping the connection that arrives afterwards', async () => {
    // A server stopped just after its database came back: the relay's reconnect is connecting when
    // it closes. The connection that arrives later must go back to the pool, or the pool never ends.
    const url = await cluster.get().createDatabase(`relay_${randomUUID().replaceAll('-', '')}`);
    const pool = await openPool({ url }, () => {}, { [PASSWORD_ENV]: PG_PASSWORD });
    const relay = await HubRelay.start(pool, new NotifyHub(), log);
    const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let reconnects = 0;
    let settled = false;
    (pool as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
      reconnects++;
      await gate;
      const client = await connect();
      settled = true;
      return client;
    };
    // End the listening session: the relay notices and starts to reconnect (through the gate).
    const admin = new pg.Client({ connectionString: cluster.get().url });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [new URL(url).pathname.slice(1)]);
    } finally {
      await admin.end();
    }
    await until(() => reconnects === 1, 30_000, 'the relay to start reconnecting');
    await relay.close();
    openGate();
    await until(() => settled, 30_000, 'the reconnect to connect');
    // Nothing checked out: the late connection was handed back.
    await until(() => pool.totalCount === pool.idleCount, 10_000, 'every connection back in the pool');
    await pool.end();
    expect(pool.ended).toBe(true);
  });
});

afterAll(async () => {
  for (const close of closers) await close();
});
