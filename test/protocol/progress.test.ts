import { describe, expect, it } from 'vitest';
import { formatProgress, parseProgress } from '../../src/protocol/progress.js';

// The reference's progress route only matches `0.<digits>` or `1.<zeros>` (bug B10).
const REFERENCE_ROUTE = /^(0\.[0-9]+|1\.0+)$/;

describe('progress values', () => {
  it.each([0, 1e-7, 0.0004, 0.25, 0.5, 0.9996, 0.99999, 1, 1.5, -3, Number.NaN])(
    'formats %d as something the reference route accepts',
    (value) => {
      expect(formatProgress(value)).toMatch(REFERENCE_ROUTE);
    },
  );

  it('keeps three decimals, never claims completion by rounding, and clamps', () => {
    expect(formatProgress(0.25)).toBe('0.250');
    expect(formatProgress(0.9999)).toBe('0.999');
    expect(formatProgress(1)).toBe('1.0');
    expect(formatProgress(2)).toBe('1.0');
    expect(formatProgress(-1)).toBe('0.0');
  });

  it('parses any plain decimal in [0, 1] and refuses the rest', () => {
    expect(parseProgress('0')).toBe(0);
    expect(parseProgress('1')).toBe(1);
    expect(parseProgress('0.5')).toBe(0.5);
    expect(parseProgress('1e-3')).toBe(0.001);
    expect(parseProgress('.5')).toBe(0.5);
    for (const bad of ['1.5', '-0.1', '0x5', '0,5', 'abc', '', 'NaN', 'Infinity', '1e5']) {
      expect(parseProgress(bad)).toBeUndefined();
    }
  });
});
