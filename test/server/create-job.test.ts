/**
 * `POST /v1/job-templates/{pk}/create-job`: the success path, and the reference's validation
 * order (documented in src/server/store/job-request.ts) plus ours (docs/COMPATIBILITY.md), one test per rule. Several tests break two rules at once to
 * show which one is checked first.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { ADMIN_PK, startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { IC_DATASET, runSpec, trainSpec } from './support/template-specs.js';

async function importTemplate(fx: Fixtures, spec: unknown): Promise<number> {
  const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
  if (res.status !== 200) throw new Error(`import failed: ${res.status} ${res.text}`);
  return res.body.pk;
}

/** A live job output of a fresh job, written straight into the database. */
function jobOutput(fx: Fixtures, options: { deleted?: boolean } = {}): number {
  const job = fx.job();
  const sha = 'a'.repeat(64);
  fx.db.prepare('INSERT OR IGNORE INTO blobs (sha256, size) VALUES (?, 1)').run(sha);
  const { lastInsertRowid } = fx.db
    .prepare('INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time, deletion_time) VALUES (?, ?, ?, ?, 1, ?, ?, ?)')
    .run(job, 'model.bin', 'BLOB', sha, ADMIN_PK, new Date().toISOString(), options.deleted ? new Date().toISOString() : null);
  return Number(lastInsertRowid);
}

function jobCount(fx: Fixtures): number {
  return (fx.db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
}

const DATASET = { dataset: { value: 1, type: IC_DATASET } };

describe('create-job success', () => {
  it('answers 200 with the job JSON, type strings normalised, only the given parameters stored', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const alice = await fx.user();
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      as: alice,
      json: {
        description: 'first run',
        input_values: { dataset: { value: 1, type: 'PK< Dataset< Domain<"Image Classification"> > >' } },
        parameter_values: { seed: { value: 7, type: 'int' }, options: { value: 'x', type: 'str' } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      template: { pk, name: 'ic-train', version: 1 },
      parent: null,
      start_time: null,
      node: null,
      outputs: [],
      description: 'first run',
      is_cancelled: false,
      creator: alice.pk,
      input_values: { dataset: { value: 1, type: IC_DATASET } },
      parameter_values: { seed: { value: 7, type: 'int' }, options: { value: 'x', type: 'str' } },
    });
    expect(jobCount(fx)).toBe(1);
  });

  it('treats a missing parameter_values as {} (bug B3)', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: {} } });
    expect(res.status).toBe(200);
    expect(res.body.parameter_values).toEqual({});
  });

  it('drops inputs the contract does not define, as the reference does', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { ...DATASET, extra: { value: 1, type: 'int' } }, parameter_values: { seed: { value: 1, type: 'int' } } },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.input_values)).toEqual(['dataset']);
  });

  it('creates jobs from a soft-deleted template too', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    await fx.call('DELETE', `/v1/job-templates/${pk}`);
    expect((await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: {} } })).status).toBe(200);
  });

  it('wakes a node waiting on the queue with X-UFDL-Wait', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    const started = Date.now();
    const waiting = fx.call('POST', '/v1/jobs/list', { json: pollFilter(), headers: { 'x-ufdl-wait': '30' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const created = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: {} } });
    const listed = await waiting;
    expect(listed.status).toBe(200);
    expect(listed.body.map((j: { pk: number }) => j.pk)).toEqual([created.body.pk]);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('accepts a JobOutput input that names a live job output', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec());
    const output = jobOutput(fx);
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { count: { value: 3, type: 'int' }, model: { value: output, type: 'JobOutput<BLOB>' } } },
    });
    expect(res.status).toBe(200);
    expect(res.body.input_values.model).toEqual({ value: output, type: 'JobOutput<BLOB>' });
  });
});

describe('create-job validation, in the order of the reference', () => {
  it('0. answers 400 for a body that is not the create-job schema (unknown key, missing input_values)', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    for (const json of [{ input_values: {}, colour: 'red' }, {}, { input_values: { a: { type: 'int' } } }, { input_values: [] }]) {
      const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(typeof res.body.detail).toBe('string');
    }
    expect(jobCount(fx)).toBe(0);
  });

  it('0. answers 406 for child_notification_overrides on a workable template', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: {}, child_notification_overrides: { x: { actions: {} } } },
    });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe('Attempted an add child notification overrides to a non-meta-job');
  });

  it('accepts a notification_override in the reference shape', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    const actions = Object.fromEntries(['on_acquire', 'on_start', 'on_progress', 'on_finish', 'on_error'].map((k) => [k, [{}]]));
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: {}, notification_override: { actions } } });
    expect(res.status).toBe(200);
  });

  it('1. answers 400 for a type string that does not parse, before checking inputs', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    // The dataset input is also missing: the parse error wins.
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { other: { value: 1, type: 'PK<Dataset' } }, parameter_values: {} },
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/^Error parsing type-string "PK<Dataset": /);
  });

  it('1. answers 400 for an unknown type name in a parameter type', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: DATASET, parameter_values: { seed: { value: 1, type: 'Integer' } } },
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('Error parsing type-string "Integer": unknown type name \'Integer\'');
  });

  it('2. answers 406 for a missing contract input, before checking parameters', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    // `seed` is missing too: the input is checked first.
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: {}, parameter_values: {} } });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe("No input value provided for input 'dataset'");
  });

  it('2. answers 406 for an input of a type its contract does not allow', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { dataset: { value: 1, type: "PK<Dataset<Domain<'Speech'>>>" } }, parameter_values: { seed: { value: 1, type: 'int' } } },
    });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe("Input 'dataset' received value of invalid type PK<Dataset<Domain<'Speech'>>>");
  });

  it('2. checks the inputs a Run template declares', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec());
    const missing = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: { count: { value: 1, type: 'int' } } } });
    expect(missing.status).toBe(406);
    expect(missing.body.detail).toBe("No input value provided for input 'model'");
    const wrong = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { count: { value: 1, type: 'str' }, model: { value: 1, type: 'JobOutput<BLOB>' } } },
    });
    expect(wrong.status).toBe(406);
    expect(wrong.body.detail).toBe("Input 'count' received value of invalid type str");
  });

  it('3. answers 400 for a missing parameter without default, before unknown parameters', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: DATASET, parameter_values: { nonsense: { value: 1, type: 'int' } } },
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe("Required parameter 'seed' is missing");
  });

  it('3. answers 406 for a value given to a const parameter', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: DATASET, parameter_values: { seed: { value: 1, type: 'int' }, body: { value: ['rm'], type: 'Array<str>' } } },
    });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe('body is const');
  });

  it('3. answers 406 for a parameter value of a type the parameter does not allow', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: DATASET, parameter_values: { seed: { value: '1', type: 'str' } } },
    });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe("Parameter type str is invalid for 'seed'");
  });

  it('3. accepts an int where a float is allowed', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: DATASET, parameter_values: { seed: { value: 1, type: 'int' }, delay: { value: 2, type: 'int' } } },
    });
    expect(res.status).toBe(200);
  });

  it('3. answers 406 naming every unknown parameter', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: {
        input_values: DATASET,
        parameter_values: { seed: { value: 1, type: 'int' }, a: { value: 1, type: 'int' }, b: { value: 'x', type: 'str' } },
      },
    });
    expect(res.status).toBe(406);
    expect(res.body.detail).toBe('Unknown job parameters: a, b');
  });

  it('4. answers 400 UFDL_ERR_CREATE_BAD_VALUE naming an input whose value does not fit its type', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec());
    const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { count: { value: 'abc', type: 'int' }, model: { value: 1, type: 'JobOutput<BLOB>' } } },
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('Bad value for input \'count\' of type int: expected an integer, got "abc"');
  });

  it('4. answers 400 naming a parameter whose value does not fit its type (reference: not checked)', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, trainSpec());
    for (const [name, value, type, problem] of [
      ['seed', 1.5, 'int', 'expected an integer'],
      ['seed', 1e300, 'int', 'expected an integer of at most 2^53 - 1 in size (a larger one loses digits)'],
      ['delay', '1', 'float', 'expected a number'],
      ['options', [1], 'Array<str>', 'element 0: expected a string'],
    ] as const) {
      const parameter_values = { seed: { value: 1, type: 'int' }, [name]: { value, type } };
      const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { json: { input_values: DATASET, parameter_values } });
      expect(res.status, type).toBe(400);
      expect(res.body.detail, type).toContain(`Bad value for parameter '${name}' of type ${type}: ${problem}`);
    }
    expect(jobCount(fx)).toBe(0);
  });

  it('4. answers 400 for a JobOutput input naming no live job output', async () => {
    const fx = await startWithFixtures();
    const pk = await importTemplate(fx, runSpec());
    const deleted = jobOutput(fx, { deleted: true });
    for (const value of [9999, deleted]) {
      const res = await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
        json: { input_values: { count: { value: 1, type: 'int' }, model: { value, type: 'JobOutput<BLOB>' } } },
      });
      expect(res.status).toBe(400);
      expect(res.body.detail).toBe(`Bad value for input 'model' of type JobOutput<BLOB>: no job output with pk ${value}`);
    }
    // Only the job that holds the deleted output exists.
    expect(jobCount(fx)).toBe(1);
  });

  it('answers 404 for an unknown template and 401 without a token', async () => {
    const fx = await startWithFixtures();
    expect((await fx.call('POST', '/v1/job-templates/31/create-job', { json: { input_values: {} } })).status).toBe(404);
    const pk = await importTemplate(fx, runSpec({}, { inputs: [] }));
    expect((await fx.call('POST', `/v1/job-templates/${pk}/create-job`, { as: null, json: { input_values: {} } })).status).toBe(401);
  });
});
