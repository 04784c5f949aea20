/**
 * A real embedded server (startTestServer) and clients on it, everything set up through the client's
 * own calls: a non-admin worker user, a registered node, an imported `Run` template and jobs.
 */
import { expect, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import { ClientError } from '../../src/client/errors.js';
import type { ClientOptions } from '../../src/client/options.js';
import type { ServerOptions } from '../../src/server/options.js';
import { ADMIN_PASSWORD, ADMIN_USER, startTestServer, type TestServer } from '../helpers/server.js';

export const WORKER_PASSWORD = 'worker-password-for-tests';

export const TEMPLATE_SPEC = {
  name: 'client-test',
  description: 'A template for the client tests',
  scope: 'public',
  licence: 'Apache-2.0',
  specific: {
    job_type: 'Run',
    executor_class: 'ufdl_agent.Command',
    required_packages: '',
    parameters: {
      body: { types: ['Array<str>'], default: ['true'], const: true, help: 'argv' },
    },
    inputs: [{ name: 'greeting', types: ['str'], help: 'what to say' }],
  },
};

export interface World {
  server: TestServer;
  admin: UfdlClient;
  client(options?: Partial<ClientOptions>): UfdlClient;
  /** A non-admin user (created by the admin) and a client logged in as it. */
  worker(name?: string, options?: Partial<ClientOptions>): Promise<UfdlClient>;
  /** Register a node as `client` and make the client send its Node-Id. */
  register(client: UfdlClient, index?: number): Promise<number>;
  template(): Promise<number>;
  createJob(description?: string): Promise<number>;
  /** A new job, acquired and started by `worker` (registered first). */
  startedJob(worker: UfdlClient): Promise<number>;
}

let nodeCounter = 0;

export async function startWorld(serverOptions: Partial<ServerOptions> = {}): Promise<World> {
  const server = await startTestServer(serverOptions);
  const client = (options: Partial<ClientOptions> = {}) => {
    const c = new UfdlClient({ serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD, retryBaseDelayMs: 20, ...options });
    onTestFinished(() => c.close());
    return c;
  };
  const admin = client();
  let templatePk: number | undefined;
  const world: World = {
    server,
    admin,
    client,
    async worker(name = `worker${++nodeCounter}`, options = {}) {
      await admin.createUser({ username: name, password: WORKER_PASSWORD });
      return client({ username: name, password: WORKER_PASSWORD, ...options });
    },
    async register(c, index = 0) {
      const node = await c.createNode({ ip: `10.9.0.${++nodeCounter}`, index, cpu_mem: 8 * 1024 ** 3 });
      c.setNodePk(node.pk);
      return node.pk;
    },
    async template() {
      templatePk ??= (await admin.importTemplate(TEMPLATE_SPEC)).pk;
      return templatePk;
    },
    async createJob(description = '') {
      const job = await admin.createJob(await world.template(), {
        input_values: { greeting: { value: 'hello', type: 'str' } },
        description,
      });
      return job.pk;
    },
    async startedJob(worker) {
      await world.register(worker);
      const pk = await world.createJob();
      await worker.acquireJob(pk);
      await worker.startJob(pk);
      return pk;
    },
  };
  return world;
}

/** The ClientError a call fails with (the test fails when the call succeeds). */
export async function failure(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error('expected the call to fail');
}
