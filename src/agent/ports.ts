/**
 * The narrow interfaces the daemon's parts depend on (STYLE rule 10): what the job runner and
 * recovery need from the client, the journal, the executors, progress parsing and output collection.
 * `wiring.ts` adapts the real modules to them; tests may pass fakes.
 */
import type { UfdlClient } from '../client/api.js';
import type { ExecutorRegistry } from './executors/registry.js';
import type { Journal } from './journal/journal.js';

/** The client calls of one slot's node (a `UfdlClient` with that node's pk as `Node-Id`). */
export type NodeApi = Pick<
  UfdlClient,
  | 'nodePk'
  | 'getJob'
  | 'acquireJob'
  | 'startJob'
  | 'progressJob'
  | 'finishJob'
  | 'releaseJob'
  | 'resetJob'
  | 'checkLanded'
  | 'uploadOutput'
  | 'getOutputInfo'
  | 'downloadOutput'
  | 'deleteOutput'
  | 'hardDeleteOutput'
  | 'downloadJobOutputByPk'
  | 'watchJob'
  | 'ping'
  | 'listJobs'
  | 'getTemplate'
  | 'appendLog'
  | 'reportWaiting'
>;

/** The journal calls of the runner and recovery. */
export type JournalPort = Pick<
  Journal,
  | 'beginAcquire'
  | 'transition'
  | 'record'
  | 'abandon'
  | 'noteRestart'
  | 'registerOutput'
  | 'markOutput'
  | 'get'
  | 'outputs'
  | 'pendingOutputs'
  | 'unfinished'
  | 'liveLog'
  | 'recordLiveLog'
>;

/** The log calls the daemon's parts make; a pino logger fits, tests may pass a fake. */
export interface LogPort {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The executor allow-list (DESIGN §4); an `ExecutorRegistry` fits. */
export type ExecutorPort = Pick<ExecutorRegistry, 'canRun' | 'executorFor'>;
