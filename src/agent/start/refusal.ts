/**
 * A start-up step that the server refuses for good: a 4xx answer other than those start-up waits out
 * (401: log in again; 408 and 429: later). A `400 Bad Node-Id` is none: it means a node record was deleted
 * under the step (a race with an admin), which a new start gets past. Asking again sends the same
 * request and gets the same answer, so the agent cannot start; what the operator must change is the
 * configuration (the server's address, the node's identity) or the user's permissions on the server.
 * The error says which, with the server's own words, so that the agent logs one line and the command
 * exits with a named status (`cli/agent-start.ts`) instead of "a bug" and a stack trace.
 */
import type { ClientError } from '../../client/errors.js';

/** What the operator should look at. */
export type RefusalSuspect =
  /** 403: the user may not do this (e.g. register a node where only worker accounts may). */
  | 'permission'
  /**
   * 404 (no such route), or a 2xx that is not what the API answers (an HTML page from a proxy):
   * `server.url` names something other than a UFDL server's API root.
   */
  | 'server-url'
  /** Registration answered 400: a field of the node is refused (its ip or index, from the configuration). */
  | 'node-fields'
  /** Any other 4xx: the server refuses what this agent sends. */
  | 'other';

export class StartUpRefusedError extends Error {
  /** The step the server refused (`registration`, `capabilities`, `re-reading job 42`, …). */
  readonly step: string;
  /** The answer's status (a 4xx, or the 2xx of an answer that is not the API's); none without one. */
  readonly status: number | undefined;
  /** The server's own message (`detail`). */
  readonly detail: string;
  /** What the operator should look at. */
  readonly suspect: RefusalSuspect;

  constructor(step: string, err: ClientError) {
    const suspect = suspectOf(step, err);
    super(`${lead(step, suspect)}: ${err.message}; ${whatToCheck(suspect)}`, { cause: err });
    this.name = 'StartUpRefusedError';
    this.step = step;
    this.status = err.status;
    this.detail = err.detail;
    this.suspect = suspect;
  }
}

/**
 * Whether `err` is a refusal that asking again cannot change (see the module comment): a 4xx other
 * than those start-up waits out, or an answer that is not the API's (the same again next time).
 */
export function isDefiniteRefusal(err: ClientError): boolean {
  if (err.kind === 'protocol') return true;
  return err.status !== undefined && err.status >= 400 && err.status < 500 && !err.transient && err.kind !== 'auth' && err.kind !== 'bad-node-id';
}

function suspectOf(step: string, err: ClientError): RefusalSuspect {
  if (err.kind === 'forbidden') return 'permission';
  if (err.kind === 'not-found' || err.kind === 'protocol') return 'server-url';
  if (step === 'registration' && err.status === 400) return 'node-fields';
  return 'other';
}

function lead(step: string, suspect: RefusalSuspect): string {
  if (suspect === 'permission') return "the server refuses the agent's user";
  if (step === 'registration') return 'the server refuses to register this node';
  return `the server refuses the agent's start-up step '${step}'`;
}

function whatToCheck(suspect: RefusalSuspect): string {
  switch (suspect) {
    case 'permission':
      return 'check server.username: the server decides what this user may do (with serve.node_actions = "workers", only worker accounts may act as nodes)';
    case 'server-url':
      return "check server.url: it must be the UFDL server's address, without a path too many or too few (and a proxy in front of it must pass every /v1/ route)";
    case 'node-fields':
      return "check agent.node_ip and agent.node_index, which give the node's ip and index (its other fields are the hardware the agent detected)";
    case 'other':
      return 'check server.url: is it a UFDL server this agent version works with?';
  }
}
