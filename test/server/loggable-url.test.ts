/** Credentials in a request's query (a web-socket's `?token=`, a download's `?ticket=`) never reach a log line. */
import { describe, expect, it } from 'vitest';
import { loggableUrl } from '../../src/server/loggable-url.js';

describe('loggableUrl', () => {
  it.each([
    ['/v1/jobs/5?token=eyJhbGciOi.secret.sig', '/v1/jobs/5?token=[secret]'],
    ['/v1/jobs/5/log?offset=10&token=abc&x=1', '/v1/jobs/5/log?offset=10&token=[secret]&x=1'],
    ['/v1/ufdl-agent/outputs/3/download?ticket=t.k.n', '/v1/ufdl-agent/outputs/3/download?ticket=[secret]'],
    ['/v1/jobs/5?TOKEN=abc&Ticket=def', '/v1/jobs/5?TOKEN=[secret]&Ticket=[secret]'],
    ['/v1/jobs/5?mytoken=keep&token=', '/v1/jobs/5?mytoken=keep&token=[secret]'],
    ['/v1/jobs/list', '/v1/jobs/list'],
    ['/v1/token=not-a-query', '/v1/token=not-a-query'],
  ])('shows %s as %s', (url, shown) => {
    expect(loggableUrl(url)).toBe(shown);
  });
});
