import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeJwtTimes } from '../../src/client/auth.js';
import { ClientError, classifyStatus, errorFromNetwork, errorFromResponse, parseRetryAfter } from '../../src/client/errors.js';
import { textSegment } from '../../src/client/http.js';
import { DEFAULTS, resolveClientOptions } from '../../src/client/options.js';
import { transitionLanded } from '../../src/client/reconcile.js';
import { backoffDelayMs } from '../../src/client/retry.js';
import { contentDisposition } from '../../src/client/uploads.js';
import { jobSocketUrl } from '../../src/client/watch.js';
import { jobJson } from '../helpers/job-json.js';
import { fakeJwt } from './peer.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('options', () => {
  it('should fill defaults and end the server URL with a slash', () => {
    const o = resolveClientOptions({ serverUrl: 'http://h:8000/ufdl', username: 'u', password: 'p' });
    expect(o.serverUrl).toBe('http://h:8000/ufdl/');
    expect(o.retryAttempts).toBe(DEFAULTS.retryAttempts);
    expect(o.requestTimeoutMs).toBe(DEFAULTS.requestTimeoutMs);
    expect(o.nodePk).toBeNull();
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('should read the password from a file once, without its trailing newline', async () => {
    const dir = await tempDir('ufdl-client-');
    const file = join(dir, 'pw');
    await writeFile(file, 's3cret\n');
    expect(resolveClientOptions({ serverUrl: 'http://h', username: 'u', passwordFile: file }).password).toBe('s3cret');
  });

  it('should name the key, expected and got, and never echo a password', () => {
    expect(() => resolveClientOptions({ serverUrl: 'ftp://h', username: 'u', password: 'p' })).toThrow(/'serverUrl'.*http/);
    expect(() => resolveClientOptions({ serverUrl: 'http://h', username: 'u', password: 'p', retryAttempts: 0 })).toThrow(/'retryAttempts' must be an integer ≥ 1, got 0/);
    expect(() => resolveClientOptions({ serverUrl: 'http://h', username: 'u', password: 'p', connectTimeoutMs: -1 })).toThrow(/'connectTimeoutMs'/);
    expect(() => resolveClientOptions({ serverUrl: 'http://h', username: 'u' })).toThrow(/exactly one of 'password' and 'passwordFile'/);
    expect(() => resolveClientOptions({ serverUrl: 'http://h', username: 'u', passwordFile: '/nonexistent/pw' })).toThrow(/'passwordFile'/);
    expect(() => resolveClientOptions({ serverUrl: 'http://h', username: 'u', password: 42 as unknown as string })).toThrow(/got number$/);
  });
});

describe('URL segments', () => {
  it('should percent-encode an output type as one segment', () => {
    expect(textSegment('Compressed<JSON, 8>', 'type')).toBe('Compressed%3CJSON%2C%208%3E');
    expect(textSegment('a/b', 'name')).toBe('a%2Fb');
    expect(textSegment("PK<Dataset<Domain<'Image Classification'>>>", 'type')).toBe("PK%3CDataset%3CDomain%3C'Image%20Classification'%3E%3E%3E");
  });

  it('should refuse names that cannot be one segment', () => {
    for (const bad of ['', '.', '..']) expect(() => textSegment(bad, 'output name')).toThrow(TypeError);
  });

  it('should build the web-socket URL without a trailing slash', () => {
    expect(jobSocketUrl('http://h:1/x/', 5).toString()).toBe('ws://h:1/x/v1/jobs/5');
    expect(jobSocketUrl('https://h/', 7).toString()).toBe('wss://h/v1/jobs/7');
  });

  it('should send the reference Content-Disposition, quoting only names a header cannot carry', () => {
    expect(contentDisposition('model.zip')).toBe('attachment; filename=model.zip');
    expect(contentDisposition('my log')).toBe('attachment; filename=my log');
    expect(contentDisposition('é;x')).toBe(`attachment; filename="_;x"; filename*=UTF-8''%C3%A9%3Bx`);
  });
});

describe('error kinds', () => {
  const of = (status: number, detail: string, op: Parameters<typeof classifyStatus>[2] = 'other') => classifyStatus(status, detail, op);

  it('should map the reference statuses and details to kinds', () => {
    expect(of(401, 'Given token not valid for any token type')).toBe('auth');
    expect(of(400, 'username: This field is required.', 'login')).toBe('auth');
    expect(of(403, 'You do not have permission to perform this action.')).toBe('forbidden');
    expect(of(404, 'Not found.')).toBe('not-found');
    expect(of(400, "Bad Node-Id header '9': No node with this primary-key")).toBe('bad-node-id');
    expect(of(406, 'Attempted to acquire job #3 that has already been acquired', 'acquire')).toBe('taken');
    expect(of(406, 'Attempted to start a job with another already in progress', 'start')).toBe('node-busy');
    expect(of(406, 'Attempted an illegal phase-transition on workable job 3 in phase LifecyclePhase.FINISHED: acquire', 'acquire')).toBe('phase');
    expect(of(406, 'Attempted an illegal phase-transition on workable job 3 in phase LifecyclePhase.CREATED: progress')).toBe('phase');
    expect(of(417, 'Attempted to perform the following action on an un-started job: add_output', 'upload')).toBe('not-started');
    expect(of(400, "Bad name 'log': Job already has an output by this name/type (log/BLOB)", 'upload')).toBe('duplicate-output');
    expect(of(400, "Bad name 'log': Job already has an output by this name/type (log/BLOB)")).toBe('bad-request');
    expect(of(413, 'too large')).toBe('too-large');
    expect(of(500, 'boom')).toBe('server');
  });

  it('should read detail from JSON, DRF field errors and HTML pages', () => {
    const h = {};
    expect(errorFromResponse({ method: 'GET', path: '/x', status: 404, text: '{"detail":"Not found."}', headers: h }).detail).toBe('Not found.');
    expect(errorFromResponse({ method: 'POST', path: '/x', status: 400, text: '{"ip":["This field is required."]}', headers: h }).detail).toBe('ip: This field is required.');
    const html = errorFromResponse({ method: 'GET', path: '/x', status: 500, text: '<html>oops</html>', headers: h });
    expect(html.kind).toBe('server');
    expect(html.detail).toMatch(/HTML/);
    expect(html.ambiguous).toBe(true);
    expect(html.transient).toBe(false);
    expect(errorFromResponse({ method: "GET", path: "/x", status: 429, text: "", headers: h }).transient).toBe(true);
    const busy = errorFromResponse({ method: 'GET', path: '/x', status: 503, text: '', headers: { 'retry-after': '2' } });
    expect(busy.transient).toBe(true);
    expect(busy.retryAfterMs).toBe(2000);
  });

  it('should not keep got errors (which hold the Authorization header) as cause', () => {
    const gotLike = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1 http://127.0.0.1:1/v1/jobs/1?token=abc'), {
      code: 'ECONNREFUSED',
      options: { headers: { authorization: 'Bearer secret' } },
    });
    const err = errorFromNetwork('GET', '/v1/jobs/1', gotLike);
    expect(err).toBeInstanceOf(ClientError);
    expect(err.kind).toBe('network');
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.cause).toBeUndefined();
    expect(err.message).not.toMatch(/secret|token=/);
    const timeout = errorFromNetwork('GET', '/x', Object.assign(new Error('Timeout awaiting'), { name: 'TimeoutError', code: 'ETIMEDOUT', event: 'response' }));
    expect(timeout.kind).toBe('timeout');
    expect(timeout.detail).toBe('response timeout');
  });

  it('should parse Retry-After in seconds and as a date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('back-off', () => {
  it('should grow exponentially with jitter in [d/2, d] and stay under the cap', () => {
    expect(backoffDelayMs(0, 100, 10_000, () => 0)).toBe(50);
    expect(backoffDelayMs(0, 100, 10_000, () => 1)).toBe(100);
    expect(backoffDelayMs(3, 100, 10_000, () => 0.5)).toBe(600);
    expect(backoffDelayMs(20, 100, 10_000, () => 1)).toBe(10_000);
    expect(backoffDelayMs(1000, 100, 10_000, () => 0)).toBe(5_000);
  });
});

describe('JWT times', () => {
  it('should decode exp and iat without verifying', () => {
    const times = decodeJwtTimes(fakeJwt(120));
    expect(times).toBeDefined();
    expect(times!.exp - times!.iat!).toBe(120);
    expect(decodeJwtTimes('not-a-jwt')).toBeUndefined();
    expect(decodeJwtTimes('a.!!!.c')).toBeUndefined();
  });
});

describe('transitionLanded', () => {
  const job = jobJson;

  it('should tell from a re-read job whether a transition landed', () => {
    expect(transitionLanded('acquire', job({ node: 7 }), 7)).toBe(true);
    expect(transitionLanded('acquire', job({ node: 8 }), 7)).toBe(false);
    expect(transitionLanded('start', job({ node: 7, start_time: 'x' }), 7)).toBe(true);
    expect(transitionLanded('start', job({ node: 7 }), 7)).toBe(false);
    expect(transitionLanded('finish', job({ node: 7, start_time: 'x' }), 7)).toBe(false);
    expect(transitionLanded('finish', job({ node: 7, start_time: 'x', end_time: 'y' }), 7)).toBe(true);
    expect(transitionLanded('finish', job({ node: 7, start_time: 'x', error_reason: 'Cancelled', is_cancelled: true }), 7)).toBe(true);
    expect(transitionLanded('finish', job({ node: null, start_time: null }), 7)).toBe(true);
    expect(transitionLanded('release', job({ node: null }), 7)).toBe(true);
    expect(transitionLanded('reset', job({ node: 7, start_time: null }), 7)).toBe(true);
  });
});
