import { describe, expect, it } from 'vitest';
import { lossOf } from '../../../src/agent/job/cancel-watch.js';
import type { JobJson } from '../../../src/protocol/wire.js';
import { jobJson } from '../../helpers/job-json.js';

const T = '2024-01-01T00:00:00Z';
/** A job started by node 7. */
const job = (fields: Partial<JobJson> = {}): JobJson => jobJson({ start_time: T, node: 7, ...fields });

describe('lossOf()', () => {
  it('keeps a job started by this node', () => {
    expect(lossOf(job(), 7)).toBeUndefined();
  });
  it('sees a cancel', () => {
    expect(lossOf(job({ error_reason: 'Cancelled', is_cancelled: true }), 7)).toBe('cancelled');
  });
  it('sees an abort (back to CREATED), another node, and a deletion', () => {
    expect(lossOf(job({ start_time: null, node: null }), 7)).toBe('taken-away');
    expect(lossOf(job({ node: 8 }), 7)).toBe('taken-away');
    expect(lossOf(job({ deletion_time: T }), 7)).toBe('taken-away');
  });
});
