/**
 * The agent's lifecycle (docs/ARCHITECTURE.md, "Conventions" 2): one string-literal union, each state documented, one table of
 * allowed edges, and one error naming the current state when a call does not fit it.
 */

export type AgentState =
  /** Opening the journal, logging in, registering, recovering the journal. No job is taken yet. */
  | 'starting'
  /** Polling for jobs and running them. */
  | 'running'
  /** A first SIGTERM/SIGINT (or `drain()`): no new jobs; running ones may finish within the drain timeout. */
  | 'draining'
  /** Stopping running jobs (reported so they run elsewhere), then closing everything. */
  | 'stopping'
  /** Everything closed after a clean stop. */
  | 'stopped'
  /** A fatal error (e.g. a second agent holds the journal); `close()` still releases what was opened. */
  | 'failed';

const EDGES: Readonly<Record<AgentState, readonly AgentState[]>> = {
  starting: ['running', 'stopping', 'failed'],
  running: ['draining', 'stopping', 'failed'],
  draining: ['stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

export function canTransition(from: AgentState, to: AgentState): boolean {
  return EDGES[from].includes(to);
}

export class IllegalStateError extends Error {
  readonly state: AgentState;

  constructor(state: AgentState, action: string) {
    super(`Agent cannot ${action} while ${state}`);
    this.name = 'IllegalStateError';
    this.state = state;
  }
}
