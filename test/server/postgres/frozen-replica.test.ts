/**
 * A replica that stops mid-transaction without its connection closing — a frozen process (SIGSTOP, a
 * paused VM, a swap storm) or a machine cut off by a network that drops packets: its session holds
 * the one-writer lock (`postgres/database.ts`), and nothing tells PostgreSQL that the session is gone
 * (the kernel still acknowledges, or nobody resets). The other replicas must not wait for it.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { WRITER_LOCK } from '../../../src/server/store/postgres/database.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas } from '../../helpers/replicas.js';
import { ERROR_CODES } from '../../../src/protocol/errors.js';
import { api, startTestServer } from '../../helpers/server.js';
import { until } from '../../helpers/wait.js';

const cluster = usePgCluster();

const newUser = (username: string) => ({ username, password: 'a-long-password-1', email: `${username}@example.org` });

describe('a replica frozen inside a transaction', () => {
  it('loses its transaction, and with it the writer lock, so the other replicas carry on writing', async () => {
    const url = await cluster.get().createDatabase('frozen_replica');
    const { replicas } = await startReplicas(2, [], { databaseUrl: url });
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    // Its own session: pg_stat_activity is read once per transaction, and the holder's stays open.
    const observer = new pg.Client({ connectionString: url });
    await observer.connect();
    try {
      // Hold the writer lock so that A's next transaction waits for it, then freeze A while it waits:
      // once the lock is let go, A's session has it and is idle in its transaction for as long as A
      // stays frozen.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [...WRITER_LOCK]);
      const onA = api(a.url, 'POST', '/v1/users/create', { token: a.server.adminToken, json: newUser('made-on-a') });
      await until(async () => {
        const { rows } = await observer.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'");
        return rows.length === 1;
      }, 30_000, "A's transaction to wait for the writer lock");
      a.child.kill('SIGSTOP');
      try {
        await holder.query('COMMIT');
        await until(async () => {
          const { rows } = await observer.query("SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'");
          return rows.length === 1;
        }, 30_000, "A's session to hold the lock, idle in its transaction");

        const onB = await api(b.url, 'POST', '/v1/users/create', { token: b.server.adminToken, json: newUser('made-on-b') });
        expect(onB.status, onB.text).toBe(201);
      } finally {
        a.child.kill('SIGCONT');
      }
      // A, thawed, finds its transaction gone: its request is answered as one whose database went
      // away (the client retries it), and A serves again.
      const answered = await onA;
      expect(answered.status, answered.text).toBe(503);
      await until(async () => (await api(a.url, 'POST', '/v1/users/create', { token: a.server.adminToken, json: newUser('made-on-a') })).status === 201, 30_000, 'A to write again');
    } finally {
      await holder.end();
      await observer.end();
    }
  }, 180_000);

  it('a write that waits for the lock past the statement timeout is a 503 the client retries, not a 500', async () => {
    // Whatever holds the lock (a replica still within its idle allowance, an operator's transaction
    // in psql), a statement PostgreSQL cancelled after its timeout is a database that did not answer.
    const url = await cluster.get().createDatabase('lock_timeout');
    const server = await startTestServer({ databaseUrl: url });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [...WRITER_LOCK]);
      const res = await api(server.url, 'POST', '/v1/users/create', { token: server.adminToken, json: newUser('waited-too-long') });
      expect(res.status, res.text).toBe(503);
      expect(res.body.detail).toBe(ERROR_CODES.UFDL_ERR_SERVER_DATABASE.doc);
      await holder.query('COMMIT');
      const again = await api(server.url, 'POST', '/v1/users/create', { token: server.adminToken, json: newUser('waited-too-long') });
      expect(again.status, again.text).toBe(201);
    } finally {
      await holder.end();
    }
  }, 180_000);
});
