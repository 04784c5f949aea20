/**
 * The fail-point registry and its environment variable. (That an armed point really kills the
 * process, at the right moment, is tested in journal/killed-mid-write.test.ts with real child processes.)
 */
import { describe, expect, it } from 'vitest';
import {
  FAIL_POINTS,
  FAIL_POINTS_ENV,
  FAIL_POINT_DOCS,
  failPoint,
  isFailPoint,
  parseFailPoints,
  resetFailPointHits,
  unknownFailPoints,
} from '../../src/agent/fail-points.js';
import { JOB_STATES, OUTPUT_STATES } from '../../src/agent/journal/index.js';

describe('fail point names', () => {
  it('should follow <subject>:<moment> and document every point', () => {
    for (const name of FAIL_POINTS) {
      expect(name).toMatch(/^[a-z-]+:[a-z-]+$/);
      expect(FAIL_POINT_DOCS[name].length).toBeGreaterThan(10);
    }
  });

  it('should have an after-write point for every job state and every output state', () => {
    for (const state of JOB_STATES) expect(FAIL_POINTS).toContain(`${state}:after-write`);
    for (const state of OUTPUT_STATES) expect(FAIL_POINTS).toContain(`output-${state}:after-write`);
  });

  it('should have an after-http point for every state that announces an HTTP call', () => {
    for (const state of ['acquiring', 'acquired', 'preparing', 'starting', 'running', 'finishing', 'releasing']) {
      expect(FAIL_POINTS).toContain(`${state}:after-http`);
    }
    expect(FAIL_POINTS).toContain('output-uploading:after-http');
    expect(FAIL_POINTS).toContain('register:after-http');
  });

  it('should tell known names from typos', () => {
    expect(isFailPoint('running:after-write')).toBe(true);
    expect(isFailPoint('runing:after-write')).toBe(false);
    expect(isFailPoint('toString')).toBe(false);
  });
});

describe(FAIL_POINTS_ENV, () => {
  it('should parse a comma-separated list with optional #N and report unknown entries', () => {
    const { armed, unknown } = parseFailPoints(' acquiring:after-write , output-uploaded:after-write#3,,bogus, done:after-write#0 ');
    expect([...armed]).toEqual([
      ['acquiring:after-write', 1],
      ['output-uploaded:after-write', 3],
    ]);
    expect(unknown).toEqual(['bogus', 'done:after-write#0']);
    expect(parseFailPoints(undefined)).toEqual({ armed: new Map(), unknown: [] });
    expect(unknownFailPoints({ [FAIL_POINTS_ENV]: 'x,running:after-http' })).toEqual(['x']);
    expect(unknownFailPoints({})).toEqual([]);
  });

  it('should do nothing when the point is not armed, or not yet at its hit', () => {
    resetFailPointHits();
    failPoint('running:after-write', {});
    failPoint('running:after-write', { [FAIL_POINTS_ENV]: 'done:after-write' });
    // armed for the third hit: the first two pass
    const env = { [FAIL_POINTS_ENV]: 'finishing:after-http#3' };
    failPoint('finishing:after-http', env);
    failPoint('finishing:after-http', env);
    resetFailPointHits();
    failPoint('finishing:after-http', env);
  });
});
