/**
 * The narrow interfaces the daemon's parts depend on, so that each part can be tested with fakes:
 * what the agent needs from the outside world ({@link AgentDeps}), and what the jobs and recovery
 * need from the client, the journal, the executors and the log. `wiring.ts` supplies the real ones.
 */
import type { UfdlClient } from '../client/api.js';
import type { ExecutorRegistry } from './executors/registry.js';
import type { NodeHardwareFacts } from './hardware/detect.js';
import type { Journal } from './journal/journal.js';

/** What the agent needs from the outside world; `wiring.ts` supplies the real ones, tests may not. */
export interface AgentDeps {
  openJournal(): Journal;
  /** A new, unauthenticated client without a node pk. */
  createClient(): UfdlClient;
  detectHardware(): Promise<NodeHardwareFacts>;
  /** `agentId`: who runs the job containers, for their labels (the journal's {@link Journal.identity}). */
  createExecutors(agentId: string): Promise<StartUpExecutorPort & { describe?(): unknown }>;
  detectIp(): Promise<string>;
}

/** The client calls of one slot's node (a `UfdlClient` with that node's pk as `Node-Id`). */
export type NodeApi = Pick<
  UfdlClient,
  | 'nodePk'
  | 'ping'
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
  | 'beginFinish'
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

/** The executor allow-list (docs/ARCHITECTURE.md, "Executors"); an `ExecutorRegistry` fits. */
export type ExecutorPort = Pick<ExecutorRegistry, 'canRun' | 'executorFor'>;

/** What start-up needs of the executors beyond that: finding the jobs' containers again. */
export type StartUpExecutorPort = ExecutorPort & Pick<ExecutorRegistry, 'followOutside' | 'sweepOutside'>;
