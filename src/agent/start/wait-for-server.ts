/**
 * Start-up steps that wait for the server: logging in — where refused credentials make the agent not
 * ready with a loud log line and a bounded re-check schedule, never a crash loop
 * — and the other steps (capabilities, hardware list, registration), retried on the error back-off
 * while the server cannot be reached.
 */
import type { UfdlClient } from '../../client/api.js';
import { isClientError, type ClientError } from '../../client/errors.js';
import type { ServerContact } from '../server-contact.js';
import { isDefiniteRefusal, StartUpRefusedError } from './refusal.js';
import type { LogPort } from '../ports.js';
import { Schedule, sleep } from '../timing.js';

export interface LoginContext {
  authRetryS: readonly number[];
  errorBackoffS: readonly number[];
  serverUrl: string;
  signal: AbortSignal;
  log: LogPort;
  contact: ServerContact;
  /** Told the current problem with the credentials, or null once they work (or the cause is elsewhere). */
  onAuthProblem(problem: string | null): void;
}

/** Log in; while refused, say so loudly and check again on the auth schedule, until the signal aborts. */
export async function loginUntilAccepted(client: Pick<UfdlClient, 'obtain' | 'options'>, ctx: LoginContext): Promise<void> {
  const authSchedule = new Schedule(ctx.authRetryS, { jitter: 0.1 });
  const errorSchedule = new Schedule(ctx.errorBackoffS);
  let refused = false;
  for (;;) {
    try {
      await client.obtain({ signal: ctx.signal });
      ctx.contact.ok();
      if (refused) ctx.log.info({}, 'the server accepted the credentials');
      ctx.onAuthProblem(null);
      return;
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      const auth = isClientError(err, 'auth');
      // Too many failed logins (the server throttles them): as refused, but wait as long as it says.
      const throttled = isClientError(err) && err.status === 429;
      const delay = throttled ? Math.max(authSchedule.next(), (err as ClientError).retryAfterMs ?? 0) : auth ? authSchedule.next() : errorSchedule.next();
      if (throttled) {
        refused = true;
        ctx.onAuthProblem(`the server throttles the logins of user '${client.options.username}' after failed attempts`);
        ctx.log.error({ user: client.options.username, retryInMs: delay, err: (err as Error).message }, 'NOT READY: the server throttles logins after failed attempts; checking again later');
      } else if (auth) {
        refused = true;
        ctx.onAuthProblem(`the server refuses the credentials of user '${client.options.username}'`);
        ctx.log.error(
          { user: client.options.username, server: ctx.serverUrl, retryInMs: delay },
          "NOT READY: the server refuses the agent's credentials: set the password on the server, or fix the agent's password_file (read again at each attempt; a password set in the environment needs a restart) — checking again later",
        );
      } else if (isClientError(err) && err.status !== undefined && err.status < 500) {
        // Answered, but not as a UFDL server's login is (a path too many or too few in server.url,
        // another service on that port): reachable, so not an outage, and not the credentials.
        ctx.contact.ok();
        ctx.onAuthProblem(`the server answers the login with ${err.status}: is server.url (${ctx.serverUrl}) the UFDL server's address?`);
        ctx.log.error(
          { err: err.message, server: ctx.serverUrl, retryInMs: delay },
          'NOT READY: the server answers the login with an error that no UFDL server gives to a login: check server.url — checking again later',
        );
      } else {
        ctx.onAuthProblem(null);
        ctx.contact.failed();
        ctx.log.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'cannot log in: server unreachable; retrying');
      }
      await sleep(delay, ctx.signal);
    }
  }
}

export interface StepContext {
  errorBackoffS: readonly number[];
  signal: AbortSignal;
  log: LogPort;
  /** Log in again after a 401 that the client's own refresh could not fix. */
  relogin(): Promise<void>;
}

/**
 * Run a start-up step, retrying on the error back-off while the server is unreachable (or answers
 * 5xx, 408 or 429). A definite refusal (another 4xx, or an answer that is not the API's) is thrown as
 * a {@link StartUpRefusedError} naming the step, the server's message and what to check: the agent
 * cannot start, and says why. A `400 Bad Node-Id` (a node record deleted under a registration or a
 * recovery) is tried again: the step then registers the node anew, or the slot's client does
 * (`slots/nodes.ts`).
 */
export async function retryStartupStep<T>(what: string, step: () => Promise<T>, ctx: StepContext): Promise<T> {
  const schedule = new Schedule(ctx.errorBackoffS);
  for (;;) {
    try {
      return await step();
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (isClientError(err) && isDefiniteRefusal(err)) throw new StartUpRefusedError(what, err);
      // A `400 Bad Node-Id` is waited out too: the slot's client re-registers its node on seeing it.
      if (isClientError(err) && !err.transient && err.kind !== 'server' && err.kind !== 'auth' && err.kind !== 'bad-node-id') throw err;
      if (isClientError(err, 'auth')) await ctx.relogin();
      const delay = schedule.next();
      ctx.log.warn({ step: what, err: err instanceof Error ? err.message : String(err), retryInMs: delay }, 'start-up step failed; retrying');
      await sleep(delay, ctx.signal);
    }
  }
}
