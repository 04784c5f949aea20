/**
 * A web-socket watch of a job on a client given two replicas of one server (real `serve` processes
 * on one data directory): when the replica it watches through is SIGKILLed, the watch reconnects to
 * the other one — the address now in use — and hears the transitions made there.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import type { JobNotification } from '../../src/protocol/wire.js';
import { createJob, importTemplate, shellTemplate, until } from '../helpers/agent.js';
import { startReplicas } from '../helpers/replicas.js';
import { ADMIN_PASSWORD, ADMIN_USER } from '../helpers/server.js';

describe('a job watch across replicas', () => {
  it('reconnects to the replica now in use when the one it watched through dies', async () => {
    const { replicas } = await startReplicas(2);
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const template = await importTemplate(a.server, shellTemplate('watched-across-replicas', 'true'));
    const pk = await createJob(a.server, template, { notifications: true });
    const client = new UfdlClient({ serverUrl: [a.url, b.url], username: ADMIN_USER, password: ADMIN_PASSWORD, retryBaseDelayMs: 20 });
    onTestFinished(() => client.close());
    const messages: JobNotification[] = [];
    let opened = 0;
    const watch = client.watchJob(pk, (m) => messages.push(m), { onOpen: () => opened++, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 200 });
    onTestFinished(() => watch.close());
    await until(() => watch.connected, 60_000, 'the watch to connect to the first replica');
    expect(client.serverUrl).toBe(`${a.url}/`);

    await a.kill();
    // No HTTP call in between: the watch's own failed reconnect moves the client on.
    await until(() => opened === 2 && watch.connected, 60_000, 'the watch to reconnect through the second replica');
    expect(client.serverUrl).toBe(`${b.url}/`);
    await client.cancelJob(pk);
    await until(() => messages.some((m) => m.transition === 'cancel'), 60_000, 'the cancel notification from the second replica');
  }, 240_000);
});
