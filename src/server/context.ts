/**
 * The services every route plugin uses, decorated onto the fastify instance as `app.ufdl`, and the
 * per-request identity (`request.user`, `request.node`) resolved by the auth hook in `identity.ts`.
 */
import type { Logger } from 'pino';
import type { TokenService } from './auth.js';
import type { BlobStore } from './blobs.js';
import type { NotifyHub } from './notify-hub.js';
import type { ResolvedServerOptions } from './options.js';
import type { Db } from './store/db.js';
import type { DurableBarrier } from './store/durability.js';
import type { TextSearches } from './store/text-searches.js';
import type { WakeHub } from './wake-up/wake-hub.js';

export interface UserRow {
  pk: number;
  username: string;
  password_hash: string;
  is_staff: number;
  is_superuser: number;
  is_active: number;
  first_name: string;
  last_name: string;
  email: string;
  date_joined: string;
  last_login: string | null;
  /** Tokens carry it; a password change increments it, revoking every older token. */
  token_generation: number;
  /** May act as a node when `nodeActions` is `'workers'`. */
  is_worker: number;
}

/** What a request knows of its user (`request.user`): what permissions and revocation check. */
export type CallerUser = Pick<UserRow, 'pk' | 'username' | 'is_staff' | 'is_superuser' | 'is_active' | 'token_generation' | 'is_worker'>;

export interface NodeRow {
  pk: number;
  ip: string;
  index: number;
  driver_version: string | null;
  hardware_generation: number | null;
  gpu_mem: number | null;
  cpu_mem: number;
  last_seen: string | null;
  current_job: number | null;
  owner: number | null;
}

/** What a request knows of the node it acts as (`request.node`): whose it is, and when it was last seen. */
export type CallerNode = Pick<NodeRow, 'pk' | 'owner' | 'last_seen'>;

export interface ServerContext {
  db: Db;
  options: ResolvedServerOptions;
  tokens: TokenService;
  hub: NotifyHub;
  /** List requests waiting on `X-UFDL-Wait`, and which one a newly acquirable job wakes. */
  wakeups: WakeHub;
  /** Group commit: hub events and answers wait until the commits they reveal are on disk. */
  durable: DurableBarrier;
  /** Lists whose filter searches text: off the event loop on SQLite, under a time limit (`store/text-searches.ts`). */
  searches: TextSearches;
  blobs: BlobStore;
  log: Logger;
  /** Set when the server begins to close: long waits return early, readiness turns false. */
  closing: AbortSignal;
}

declare module 'fastify' {
  interface FastifyInstance {
    ufdl: ServerContext;
  }
  interface FastifyRequest {
    /** The user named by a valid `Authorization: Bearer` access token, else null. */
    user: CallerUser | null;
    /** The node named by a valid `Node-Id` header that this user may act as, else null. */
    node: CallerNode | null;
    /** The request carries the configured metrics secret (and no user token). */
    metricsScraper: boolean;
  }
  interface FastifyContextConfig {
    /** The route accepts the metrics secret as its bearer token. */
    metricsSecret?: boolean;
  }
}
