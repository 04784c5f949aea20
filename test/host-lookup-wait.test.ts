/**
 * The wait for a resolver that cannot answer yet, before a listen on a host name
 * (src/host-lookup-wait.ts): EAI_AGAIN is retried in-process until the name resolves, for a bounded
 * time, and a stop ends the wait at once; any other lookup failure is not waited for. The resolver
 * is a stand-in that fails as getaddrinfo does; test/cli/listen-host-lookup.test.ts runs the real
 * commands against the same kind of failure.
 */
import { describe, expect, it } from 'vitest';
import { describeHostLookupRetry, waitForHostLookup, type HostLookupRetry } from '../src/host-lookup-wait.js';

function lookupError(code: string, host: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ${code} ${host}`), { code, syscall: 'getaddrinfo', hostname: host });
}

/** A resolver that fails the first `failures` lookups with `code`, then answers; counts the lookups. */
function resolver(failures: number, code = 'EAI_AGAIN') {
  const looked: string[] = [];
  return {
    looked,
    lookup: async (host: string) => {
      looked.push(host);
      if (looked.length <= failures) throw lookupError(code, host);
      return '127.0.0.1';
    },
  };
}

function warnings() {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  return { lines, log: { warn: (fields: object, msg: string) => void lines.push({ fields: fields as Record<string, unknown>, msg }) } };
}

describe('waiting for the resolver before a listen', () => {
  it('looks up again while the resolver cannot answer, and returns once the name resolves', async () => {
    const { lookup, looked } = resolver(2);
    const { log, lines } = warnings();
    await waitForHostLookup('flaky.test', { listener: 'the server', log, lookup });
    expect(looked).toEqual(['flaky.test', 'flaky.test', 'flaky.test']);
    // The first failure is logged, with the host and the error; the next only every fifth.
    expect(lines).toHaveLength(1);
    expect(lines[0]!.msg).toMatch(/^the server cannot look up flaky\.test just now \(getaddrinfo EAI_AGAIN flaky\.test\); trying again in \d+ s, for up to 10 min before exiting$/);
    expect(lines[0]!.fields).toMatchObject({ host: 'flaky.test', code: 'EAI_AGAIN', failures: 1 });
  });

  it('tells onRetry of every failed lookup, for the status line, not only of the logged ones', async () => {
    const { lookup } = resolver(2);
    const { log } = warnings();
    const retries: HostLookupRetry[] = [];
    await waitForHostLookup('flaky.test', { listener: 'the server', log, lookup, onRetry: (retry) => retries.push(retry) });
    expect(retries.map((r) => [r.host, r.failures])).toEqual([
      ['flaky.test', 1],
      ['flaky.test', 2],
    ]);
    expect(describeHostLookupRetry(retries[0]!)).toMatch(/^waiting for the resolver to answer for flaky\.test \(1 try failed; next try in 1 s, gives up in 10 min\)$/);
    expect(describeHostLookupRetry({ host: 'ufdl.example', failures: 3, retryInMs: 4200, givesUpInMs: 8.5 * 60_000 })).toBe(
      'waiting for the resolver to answer for ufdl.example (3 tries failed; next try in 4 s, gives up in 9 min)',
    );
  });

  it('gives up with the EAI_AGAIN error once the time is up', async () => {
    const { lookup, looked } = resolver(Infinity);
    const { log } = warnings();
    const error = await waitForHostLookup('flaky.test', { listener: 'the server', log, lookup, limitMs: 1 }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'EAI_AGAIN', hostname: 'flaky.test' });
    expect(looked.length).toBeGreaterThanOrEqual(1);
  });

  it('ends the wait at once when asked to stop, looking up no more', async () => {
    const { lookup, looked } = resolver(Infinity);
    const stop = new AbortController();
    let warned!: () => void;
    const firstWarning = new Promise<void>((resolve) => (warned = resolve));
    const log = { warn: () => warned() };
    const wait = waitForHostLookup('flaky.test', { listener: 'the status endpoint', log, lookup, signal: stop.signal });
    await firstWarning;
    stop.abort(new Error('SIGTERM received'));
    await expect(wait).rejects.toThrow('SIGTERM received');
    expect(looked).toHaveLength(1);
  });

  it('does not wait for a name that does not exist: the listen reports it', async () => {
    const { lookup, looked } = resolver(Infinity, 'ENOTFOUND');
    const { log, lines } = warnings();
    await waitForHostLookup('nowhere.test', { listener: 'the server', log, lookup });
    expect(looked).toEqual(['nowhere.test']);
    expect(lines).toEqual([]);
  });

  it('looks up no address', async () => {
    const { lookup, looked } = resolver(Infinity);
    const { log } = warnings();
    for (const address of ['127.0.0.1', '0.0.0.0', '::', '::1']) await waitForHostLookup(address, { listener: 'the server', log, lookup });
    expect(looked).toEqual([]);
  });
});
