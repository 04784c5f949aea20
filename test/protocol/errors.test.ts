import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, UfdlError } from '../../src/protocol/errors.js';

describe('error registry', () => {
  it('is documented code by code in docs/ERRORS.md with the same status', async () => {
    const doc = await readFile('docs/ERRORS.md', 'utf8');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  it('uses only client-error statuses for conditions a client can cause', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      if (code.startsWith('UFDL_ERR_SERVER_')) continue;
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(500);
    }
  });

  it('carries code, status, detail and cause', () => {
    const cause = new Error('low level');
    const err = new UfdlError('UFDL_ERR_JOB_ACQUIRED', 'Attempted to acquire job #1 that has already been acquired', { cause });
    expect(err.statusCode).toBe(406);
    expect(err.code).toBe('UFDL_ERR_JOB_ACQUIRED');
    expect(err.cause).toBe(cause);
  });
});
