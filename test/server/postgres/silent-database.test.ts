/**
 * A replica whose database connection goes silent — a network that drops packets, a database host
 * that vanished behind its address (a fail-over) — while a statement is in flight: nothing ever
 * answers or resets that connection. The request becomes a 503 after the statement's time, and the
 * replica must then serve on a new connection, not queue every later statement behind the dead one.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { TcpProxy } from '../../faults/helpers/proxy.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas } from '../../helpers/replicas.js';
import { api } from '../../helpers/server.js';

const cluster = usePgCluster();

describe('a replica whose database connection goes silent mid-statement', () => {
  it('answers that request 503 and serves the next on a new connection', async () => {
    const url = new URL(await cluster.get().createDatabase('silent_database'));
    const proxy = await TcpProxy.start({ port: Number(url.port) });
    onTestFinished(() => proxy.close());
    url.port = String(proxy.port);
    // A process of its own: its requests block its event loop while a statement is out, and the
    // proxy must keep running meanwhile.
    const { replicas } = await startReplicas(1, [], { databaseUrl: url.toString() });
    const replica = replicas[0]!;
    const list = () => api(replica.url, 'POST', '/v1/jobs/list', { token: replica.server.adminToken, json: {} });
    expect((await list()).status).toBe(200);

    proxy.setMode('drop');
    const lost = await list();
    expect(lost.status, lost.text).toBe(503);
    // The network is back for new connections; the one that went silent stays dead.
    proxy.setMode('pass');
    const after = await list();
    expect(after.status, after.text).toBe(200);
  }, 240_000);
});
