import type { JobJson } from '../../src/protocol/wire.js';

/** A job as the server sends it: CREATED, unacquired, pk 1, with `fields` overriding any key. */
export function jobJson(fields: Partial<JobJson> = {}): JobJson {
  return {
    pk: 1,
    template: { pk: 1, name: 't', version: 1 },
    parent: null,
    start_time: null,
    end_time: null,
    error_reason: null,
    input_values: {},
    parameter_values: {},
    node: null,
    outputs: [],
    description: '',
    is_cancelled: false,
    creator: 1,
    creation_time: '2026-01-01T00:00:00.000Z',
    deletion_time: null,
    ...fields,
  };
}
