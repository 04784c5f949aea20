/**
 * SlotNodes against a real server: what a slot's client sends while its node registers again.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { SlotNodes } from '../../../src/agent/slots/nodes.js';
import { UfdlClient } from '../../../src/client/api.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer } from '../../helpers/server.js';

const silent = { info() {}, warn() {}, error() {} };

describe('SlotNodes', () => {
  it("keeps sending the slot's old Node-Id while it registers again, and the new one after", async () => {
    const server = await startTestServer();
    const root = new UfdlClient({ serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
    onTestFinished(() => root.close());
    const nodes = new SlotNodes({
      root,
      ip: '10.1.2.3',
      hardware: { cpuMemBytes: 8 * 1024 ** 3, driverVersion: null, gpus: [] },
      generations: [],
      log: silent,
    });
    const [slot] = await nodes.registerAll([{ index: 0, gpu: null, nodeIndex: 0 }]);
    const old = slot!.node.pk;
    expect(slot!.api.nodePk).toBe(old);

    // The server forgets the node; the slot registers again. What would the slot's own calls (its
    // progress, its live log) carry while registration's look-up is at the server?
    expect((await api(server.url, 'DELETE', `/v1/nodes/${old}`, { token: server.adminToken })).status).toBe(204);
    const sentMeanwhile: (number | null)[] = [];
    const forNode = root.forNode.bind(root);
    root.forNode = (pk) => {
      const client = forNode(pk);
      const listNodes = client.listNodes.bind(client);
      client.listNodes = (...args) => {
        sentMeanwhile.push(slot!.api.nodePk);
        return listNodes(...args);
      };
      return client;
    };
    await nodes.reregister(0);

    // Its old pk, which the server answers `400 Bad Node-Id` (waited out), not none (401/403: "not yours").
    expect(sentMeanwhile).toEqual([old]);
    const renewed = nodes.get(0)!.node.pk;
    expect(renewed).not.toBe(old);
    expect(slot!.api.nodePk).toBe(renewed);
    // The new registration is the server's node of that identity.
    const listed = await api(server.url, 'GET', `/v1/nodes/${renewed}`, { token: server.adminToken });
    expect(listed.body).toMatchObject({ ip: '10.1.2.3', index: 0 });
  });
});
