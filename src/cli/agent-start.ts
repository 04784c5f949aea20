/**
 * Starting the agent from a command (`run`, `standalone`): the start-up failures a user causes become
 * one line and a named exit status (exit-codes.ts) instead of "internal error" with a stack trace.
 */
import { StatusListenError } from '../agent/health/status-server.js';
import type { Agent } from '../agent/index.js';
import { JournalError, JournalLockedError } from '../agent/journal/errors.js';
import { StartUpRefusedError } from '../agent/start/refusal.js';
import { isClientError } from '../client/errors.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';

/**
 * Create the agent, let `beforeStart` attach to it (the systemd notifier, the reload signal: both
 * need the agent before it starts), then start it.
 */
export async function startAgentFromCli(create: () => Agent, beforeStart: (agent: Agent) => void = () => {}): Promise<Agent> {
  try {
    const agent = create();
    beforeStart(agent);
    await agent.start();
    return agent;
  } catch (err) {
    if (err instanceof JournalLockedError) throw new CliError(EXIT.JOURNAL_IN_USE, err.message);
    // A journal of a newer agent (a rolled-back upgrade), or a file that is no journal at all: a
    // restart would refuse it again.
    if (err instanceof JournalError && err.code === 'JOURNAL_SCHEMA') {
      throw new CliError(EXIT.CONFIG, `${err.message.replace(/\.$/, '')}; check agent.journal (a journal of a newer agent needs that version, or a newer one)`);
    }
    // The server refuses a start-up step for good (a 4xx): the same request would get the same answer
    // after a restart. Its user's permission (403: registering a node where serve.node_actions =
    // "workers" and the user is no worker account) is the permission status; anything else (a node
    // field it refuses, a route it does not have at server.url) is for the configuration to fix.
    if (err instanceof StartUpRefusedError) throw new CliError(err.suspect === 'permission' ? EXIT.NOPERM : EXIT.CONFIG, err.message);
    // The server refuses what the agent's user may do outside those steps: a permission problem, as
    // for the operator commands.
    if (isClientError(err, 'forbidden')) throw new CliError(EXIT.NOPERM, `the server refuses the agent's user: ${err.message}`);
    // Another agent on this machine holds the port (each needs its own), or the address is wrong: a
    // configuration error, which systemd does not restart, as the server's own port (serve.port).
    if (err instanceof StatusListenError) {
      // A host name the resolver could not look up, even after waiting for it (host-lookup-wait.ts):
      // the temporary-failure status, which systemd restarts; the configuration may well be right.
      if (err.temporary) {
        throw new CliError(EXIT.TEMPFAIL, `${err.message}; check agent.status_host (UFDL_AGENT_STATUS_HOST) if it lasts, or give it as an address`);
      }
      throw new CliError(
        EXIT.CONFIG,
        err.portProblem
          ? `${err.message}; choose another agent.status_port (UFDL_AGENT_STATUS_PORT), or -1 for no status endpoint`
          : `${err.message}; check agent.status_host (UFDL_AGENT_STATUS_HOST), or set agent.status_port = -1 for no status endpoint`,
      );
    }
    throw err;
  }
}
