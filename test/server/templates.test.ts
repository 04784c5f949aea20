import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { ADMIN_PK, startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer } from '../helpers/server.js';
import { databaseUrlFor, dropDatabaseFor } from '../helpers/store-under-test.js';
import { tempDir } from '../helpers/temp-dir.js';
import { IC_DATASET, runSpec, trainSpec } from './support/template-specs.js';

const TEMPLATE_KEYS = [
  'pk', 'name', 'version', 'description', 'scope', 'domain', 'licence', 'creator', 'creation_time', 'deletion_time',
  'type', 'executor_class', 'required_packages', 'parameters',
];

async function importOk(fx: Fixtures, spec: unknown) {
  const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
  if (res.status !== 200) throw new Error(`import failed: ${res.status} ${res.text}`);
  return res.body;
}

describe('POST /v1/job-templates/import', () => {
  it('imports a Train template in the reference format and shows the template JSON of the reference', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/job-templates/import', { json: trainSpec() });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(TEMPLATE_KEYS);
    expect(res.body).toMatchObject({
      name: 'ic-train',
      version: 1,
      domain: 'ic',
      // The licence's pk, as the reference answers (Apache 2.0 is its second licence).
      licence: 2,
      creator: ADMIN_PK,
      deletion_time: null,
      type: "Train<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>",
      executor_class: 'ufdl_agent.Command',
    });
    expect(res.body.parameters.factor).toEqual({ types: ['int'], help: 'The accuracy factor.', default: 1000, default_type: 'int', const: false });
    expect(res.body.parameters.body).toMatchObject({ default_type: 'Array<str>', const: true });
    // No default: no default, default_type or const keys.
    expect(res.body.parameters.seed).toEqual({ types: ['int'], help: 'Random seed (required).' });
    const again = await fx.call('GET', `/v1/job-templates/${res.body.pk}`);
    expect(again.body).toEqual(res.body);
  });

  it('stores type strings normalised', async () => {
    const fx = await startWithFixtures();
    const spec = trainSpec();
    (spec.specific as any).job_type = 'Train< Domain<"Image Classification">,Framework<\'dogs_dummy\',\'1\'> >';
    (spec.specific as any).parameters.options.types = ['Array< str >', 'str'];
    const body = await importOk(fx, spec);
    expect(body.type).toBe("Train<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>");
    expect(body.parameters.options.types).toEqual(['Array<str>', 'str']);
  });

  it('imports a Run template with its inputs, shown in the template JSON', async () => {
    const fx = await startWithFixtures();
    const body = await importOk(fx, runSpec());
    expect(body.type).toBe('Run');
    expect(body.inputs).toEqual([
      { name: 'count', types: ['int'], help: 'How many' },
      { name: 'model', types: ['JobOutput<BLOB>'], help: '' },
    ]);
    const outputs = await fx.call('GET', `/v1/job-templates/${body.pk}/get-outputs`);
    expect(outputs.body).toEqual({ 'result.csv': 'BLOB', summary: 'JSON' });
  });

  it('counts the outputs an `outputs` parameter declares, as a map or as a JSON string (as the agent reads it)', async () => {
    const fx = await startWithFixtures();
    const body = { types: ['str'], default: 'echo hi > "$UFDL_OUTPUT_DIR/model.bin"', const: true, help: '' };
    for (const [name, declared] of [
      ['as-map', { types: ['JSON'], default: { 'model.bin': 'BLOB' }, const: true, help: '' }],
      ['as-string', { types: ['str'], default: '{"model.bin": "BLOB"}', const: true, help: '' }],
    ] as const) {
      const template = await importOk(fx, runSpec({ name }, { inputs: [], outputs: {}, parameters: { body, outputs: declared } }));
      // Before, the string form was left out: a workflow could not wire what the agent uploads.
      expect((await fx.call('GET', `/v1/job-templates/${template.pk}/get-outputs`)).body, name).toEqual({ 'model.bin': 'BLOB' });
    }
  });

  it('soft-deletes an active template of the same name and version first', async () => {
    const fx = await startWithFixtures();
    const first = await importOk(fx, trainSpec());
    const second = await importOk(fx, trainSpec({ description: 'v1 again' }));
    expect(second.pk).not.toBe(first.pk);
    expect((await fx.call('GET', `/v1/job-templates/${first.pk}`)).body.deletion_time).not.toBeNull();
    const active = await fx.call('POST', '/v1/job-templates/list', { json: {} });
    expect(active.body.map((t: { pk: number }) => t.pk)).toEqual([second.pk]);
    const all = await fx.call('POST', '/v1/job-templates/list', { json: { include_inactive: true } });
    expect(all.body.map((t: { pk: number }) => t.pk)).toEqual([first.pk, second.pk]);
  });

  it('gives a template without a version the next version of its name', async () => {
    const fx = await startWithFixtures();
    await importOk(fx, trainSpec({ version: 3 }));
    const { version: _omit, ...unversioned } = trainSpec();
    expect((await importOk(fx, unversioned)).version).toBe(4);
    expect((await importOk(fx, { ...unversioned, name: 'fresh' })).version).toBe(1);
  });

  it('answers 400 "Bad job template: …" naming the field for each kind of mistake', async () => {
    const fx = await startWithFixtures();
    const train = trainSpec();
    const withParam = (param: unknown) => trainSpec({ specific: { ...(train.specific as object), parameters: { p: param } } });
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing name', { ...trainSpec(), name: undefined }, /name/],
      ['unknown top-level key', trainSpec({ colour: 'red' }), /colour/],
      ['domain of the wrong length', trainSpec({ domain: 'image' }), /domain/],
      ['version 0', trainSpec({ version: 0 }), /version/],
      ['unknown key in specific', trainSpec({ specific: { ...(train.specific as object), extra: 1 } }), /specific.*extra/],
      ['neither workable nor meta-template', trainSpec({ specific: { graph: {} } }), /either job_type.*or nodes and dependencies/],
      ['unparsable parameter type', withParam({ types: ['Array<str'], help: '' }), /specific\.parameters\.p\.types\[0\]: Error parsing type-string "Array<str"/],
      ['unknown type name', withParam({ types: ['Foo'], help: '' }), /unknown type name 'Foo'/],
      ['parameter without help', withParam({ types: ['int'] }), /specific\.parameters\.p\.help/],
      ['const without default', withParam({ types: ['int'], const: true, help: '' }), /Must provide a default value for const parameters/],
      ['default of the wrong type', withParam({ types: ['int'], default: 'many', help: '' }), /specific\.parameters\.p\.default: fits none/],
      ['default_type not among the types', withParam({ types: ['int'], default: 1, default_type: 'str', help: '' }), /default_type: str is not one of/],
      ['unknown contract', trainSpec({ specific: { ...(train.specific as object), job_type: 'Fit' } }), /unknown contract 'Fit'/],
      ['Train without type arguments', trainSpec({ specific: { ...(train.specific as object), job_type: 'Train' } }), /Train takes 2/],
      ['Train with the wrong argument kinds', trainSpec({ specific: { ...(train.specific as object), job_type: "Train<Framework<'a', '1'>, Domain<'b'>>" } }), /DomainType must be a Domain/],
      ['inputs on a Train template', trainSpec({ specific: { ...(train.specific as object), inputs: [{ name: 'x', types: ['int'] }] } }), /only Run templates declare/],
    ];
    for (const [what, spec, detail] of cases) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
      expect(res.status, what).toBe(400);
      expect(res.body.detail, what).toMatch(/^Bad job template: /);
      expect(res.body.detail, what).toMatch(detail);
    }
    expect((fx.db.prepare('SELECT COUNT(*) AS n FROM templates').get() as { n: number }).n).toBe(0);
  });

  it('refuses a number constant too large for a number (1e999) in a type string, rather than storing one that cannot be read back', async () => {
    const fx = await startWithFixtures();
    // 1e999 parsed to Infinity and was stored as `Array<int, Infinity>`, which no longer parses:
    // every later get-all-parameters of the template answered 500.
    const withList = (type: string) => runSpec({}, { parameters: { n: { types: [type], help: 'a list' }, body: { types: ['str'], default: 'true', const: true, help: 'The script.' } } });
    const spec = withList('Array<int, 1e999>');
    const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
    expect(res.status, res.text).toBe(400);
    expect(res.body.detail).toMatch(/^Bad job template: specific\.parameters\.n\.types\[0\]: Error parsing type-string "Array<int, 1e999>": number out of range/);
    expect((fx.db.prepare('SELECT COUNT(*) AS n FROM templates').get() as { n: number }).n).toBe(0);
    const values = await fx.call('GET', `/v1/job-types/get-all-values/${encodeURIComponent('Array<int, -1e999>')}`);
    expect(values.status, values.text).toBe(400);
    expect(values.body.detail).toMatch(/number out of range/);
    // A large but finite constant is still a number.
    const finite = await fx.call('POST', '/v1/job-templates/import', { json: withList('Array<int, 1e300>') });
    expect(finite.status, finite.text).toBe(200);
    expect((await fx.call('GET', `/v1/job-templates/${finite.body.pk}/get-all-parameters`)).status).toBe(200);
  });

  it('answers 400 saying to import the template again, not 500, for a type it stored before numbers were checked (Infinity)', async () => {
    const fx = await startWithFixtures();
    const spec = runSpec({}, { inputs: [], parameters: { n: { types: ['Array<int, 1e300>'], help: 'a list' }, body: { types: ['str'], default: 'true', const: true, help: 'The script.' } } });
    const imported = await fx.call('POST', '/v1/job-templates/import', { json: spec });
    expect(imported.status, imported.text).toBe(200);
    // What an import of `Array<int, 1e999>` stored before the fix: a type that no longer parses.
    const stored = fx.db.prepare('SELECT parameters FROM templates WHERE pk = ?').get(imported.body.pk) as { parameters: string };
    expect(stored.parameters).toMatch(/1e\+300/);
    fx.db.prepare('UPDATE templates SET parameters = ? WHERE pk = ?').run(stored.parameters.replace(/1e\+300/g, 'Infinity'), imported.body.pk);

    const unreadable = /^Error parsing type-string "Array<int, Infinity>": .*: a type string stored with this template can no longer be read .*; import the template again$/;
    const all = await fx.call('GET', `/v1/job-templates/${imported.body.pk}/get-all-parameters`);
    expect(all.status, all.text).toBe(400);
    expect(all.body.detail).toMatch(unreadable);
    const jobs = () => (fx.db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
    const before = jobs();
    const created = await fx.call('POST', `/v1/job-templates/${imported.body.pk}/create-job`, {
      json: { description: '', input_values: {}, parameter_values: { n: { value: [1], type: 'Array<int, 1e300>' } } },
    });
    expect(created.status, created.text).toBe(400);
    expect(created.body.detail).toMatch(unreadable);
    expect(jobs()).toBe(before);
  });

  it('answers 400 for Run declarations that cannot be used', async () => {
    const fx = await startWithFixtures();
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['an input twice', { inputs: [{ name: 'a', types: ['int'] }, { name: 'a', types: ['str'] }] }, /'a' is declared twice/],
      ['an input named like a parameter', { inputs: [{ name: 'label', types: ['str'] }] }, /'label' is also a parameter/],
      ['an input with a bad type', { inputs: [{ name: 'a', types: ['JobOutput<'] }] }, /specific\.inputs\[0\]\.types\[0\]/],
      ['an input that is not an identifier', { inputs: [{ name: 'a b', types: ['int'] }] }, /specific\.inputs\.0\.name/],
      ['an output name with a slash', { outputs: { '../x': 'BLOB' } }, /output name "..\/x" contains a path separator/],
      ['an output with a bad type', { outputs: { x: 'Blob' } }, /specific\.outputs\.x: .*unknown type name 'Blob'/],
    ];
    for (const [what, specific, detail] of cases) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: runSpec({}, specific) });
      expect(res.status, what).toBe(400);
      expect(res.body.detail, what).toMatch(detail);
    }
  });

  it('is for admins only', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    expect((await fx.call('POST', '/v1/job-templates/import', { as: alice, json: trainSpec() })).status).toBe(403);
    expect((await fx.call('POST', '/v1/job-templates/import', { as: null, json: trainSpec() })).status).toBe(401);
  });
});

describe('POST /v1/job-templates/list and GET /v1/job-templates/{pk}', () => {
  it('filters by template fields and refuses unknown ones', async () => {
    const fx = await startWithFixtures();
    await importOk(fx, trainSpec());
    const run = await importOk(fx, runSpec());
    const alice = await fx.user();
    const res = await fx.call('POST', '/v1/job-templates/list', {
      as: alice,
      json: { expressions: [{ type: 'contains', field: 'executor_class', sub_string: 'Shell' }] },
    });
    expect(res.status).toBe(200);
    expect(res.body.map((t: { pk: number }) => t.pk)).toEqual([run.pk]);
    const bad = await fx.call('POST', '/v1/job-templates/list', { json: { expressions: [{ type: 'isnull', field: 'colour' }] } });
    expect(bad.status).toBe(400);
  });

  it('answers 404 for an unknown template and 401 without a token', async () => {
    const fx = await startWithFixtures();
    expect((await fx.call('GET', '/v1/job-templates/77')).body).toEqual({ detail: 'Not found.' });
    expect((await fx.call('POST', '/v1/job-templates/list', { as: null, json: {} })).status).toBe(401);
  });
});

describe('contract views', () => {
  it('get-types and get-outputs substitute the type arguments into the contract', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, trainSpec());
    const types = await fx.call('GET', `/v1/job-templates/${pk}/get-types`);
    expect(types.body).toEqual({ DomainType: "Domain<'Image Classification'>", FrameworkType: "Framework<'dogs_dummy', '1'>" });
    const outputs = await fx.call('GET', `/v1/job-templates/${pk}/get-outputs`);
    expect(outputs.body).toEqual({ model: "Model<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>" });
    const inputs = await fx.call('GET', `/v1/job-templates/${pk}/get-inputs`);
    expect(inputs.body).toEqual({ dataset: { types: [IC_DATASET], help: 'The dataset to train on' } });
  });

  it('Predict takes a JobOutput of the model and a dataset, and outputs predictions', async () => {
    const fx = await startWithFixtures();
    const train = trainSpec();
    const { pk } = await importOk(fx, {
      ...train,
      name: 'ic-predict',
      specific: { ...(train.specific as object), job_type: "Predict<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>" },
    });
    const inputs = (await fx.call('GET', `/v1/job-templates/${pk}/get-inputs`)).body;
    expect(inputs.model.types).toEqual(["JobOutput<Model<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>>"]);
    expect(inputs.dataset.types).toEqual([IC_DATASET, "Name<Dataset<Domain<'Image Classification'>>>"]);
    expect((await fx.call('GET', `/v1/job-templates/${pk}/get-outputs`)).body).toEqual({ predictions: IC_DATASET });
  });

  it('get-all-parameters gives each type with its JSON schema and the default with its own', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, trainSpec());
    const res = await fx.call('GET', `/v1/job-templates/${pk}/get-all-parameters`);
    expect(res.status).toBe(200);
    expect(res.body.options).toEqual({
      types: { 'Array<str>': { type: 'array', items: { type: 'string' } }, str: { type: 'string' } },
      help: 'Extra options.',
      default: { value: ['a', 'b'], type: 'Array<str>', schema: { type: 'array', items: { type: 'string' } }, const: false },
    });
    expect(res.body.seed).toEqual({ types: { int: { type: 'integer' } }, help: 'Random seed (required).' });
    expect(res.body.body.default.const).toBe(true);
  });

  it('get-all-matching-templates finds templates of a contract whose inputs accept the given types', async () => {
    const fx = await startWithFixtures();
    const train = await importOk(fx, trainSpec());
    await importOk(fx, runSpec());
    const match = await fx.call('GET', `/v1/job-templates/get-all-matching-templates/Train?dataset=${encodeURIComponent(IC_DATASET)}`);
    expect(match.status).toBe(200);
    expect(match.body.map((t: { pk: number }) => t.pk)).toEqual([train.pk]);
    const otherDomain = await fx.call('GET', `/v1/job-templates/get-all-matching-templates/Train?dataset=${encodeURIComponent("PK<Dataset<Domain<'Speech'>>>")}`);
    expect(otherDomain.body).toEqual([]);
    const unknownInput = await fx.call('GET', '/v1/job-templates/get-all-matching-templates/Train?model=int');
    expect(unknownInput.body).toEqual([]);
    const unknown = await fx.call('GET', '/v1/job-templates/get-all-matching-templates/Fit');
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({ detail: "Bad name 'Fit': Unknown contract name" });
    const badType = await fx.call('GET', '/v1/job-templates/get-all-matching-templates/Train?dataset=PK%3C');
    expect(badType.status).toBe(400);
    expect(badType.body.detail).toMatch(/^Error parsing type-string "PK<"/);
  });
});

describe('deleting and reinstating templates', () => {
  it('soft-deletes (204, repeatable): hidden from the list, still retrievable; reinstate brings it back', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, trainSpec());
    for (let i = 0; i < 2; i++) {
      const res = await fx.call('DELETE', `/v1/job-templates/${pk}`);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
    }
    expect((await fx.call('POST', '/v1/job-templates/list', { json: {} })).body).toEqual([]);
    expect((await fx.call('GET', `/v1/job-templates/${pk}`)).body.deletion_time).not.toBeNull();
    const back = await fx.call('DELETE', `/v1/job-templates/${pk}/reinstate`);
    expect(back.status).toBe(200);
    expect(back.body.deletion_time).toBeNull();
    expect((await fx.call('POST', '/v1/job-templates/list', { json: {} })).body).toHaveLength(1);
  });

  it('refuses to reinstate a template while another of the same name and version is active (400 naming it)', async () => {
    const fx = await startWithFixtures();
    const first = await importOk(fx, trainSpec());
    // The import of the same name and version soft-deletes the first; reinstating it would leave two
    // active templates `ic-train v1`, and an import or a workflow node naming that version would pick either.
    const second = await importOk(fx, trainSpec({ description: 'v1 again' }));
    const res = await fx.call('DELETE', `/v1/job-templates/${first.pk}/reinstate`);
    expect(res.status, res.text).toBe(400);
    expect(res.body.detail).toBe(
      `Template ${first.pk} cannot be reinstated: template ${second.pk} is the active 'ic-train' v1; soft-delete it (DELETE /v1/job-templates/${second.pk}) first`,
    );
    expect((await fx.call('GET', `/v1/job-templates/${first.pk}`)).body.deletion_time).not.toBeNull();
    // Once the other is deleted, the first comes back; reinstating an active template stays a no-op.
    expect((await fx.call('DELETE', `/v1/job-templates/${second.pk}`)).status).toBe(204);
    expect((await fx.call('DELETE', `/v1/job-templates/${first.pk}/reinstate`)).body.deletion_time).toBeNull();
    expect((await fx.call('DELETE', `/v1/job-templates/${first.pk}/reinstate`)).status).toBe(200);
    const active = await fx.call('POST', '/v1/job-templates/list', { json: {} });
    expect(active.body.map((t: { pk: number }) => t.pk)).toEqual([first.pk]);
  });

  it('hard-deletes an unused template, returning it as it was', async () => {
    const fx = await startWithFixtures();
    const template = await importOk(fx, trainSpec());
    const res = await fx.call('DELETE', `/v1/job-templates/${template.pk}/hard`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(template);
    expect((await fx.call('GET', `/v1/job-templates/${template.pk}`)).status).toBe(404);
  });

  it('refuses to hard-delete a template that jobs use (400 UFDL_ERR_TEMPLATE_IN_USE)', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, runSpec());
    fx.job({ template: pk });
    const res = await fx.call('DELETE', `/v1/job-templates/${pk}/hard`);
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/1 job refer to it; soft-delete it/);
    expect((await fx.call('GET', `/v1/job-templates/${pk}`)).status).toBe(200);
  });

  it('is for admins only', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, trainSpec());
    const alice = await fx.user();
    for (const path of [`/v1/job-templates/${pk}`, `/v1/job-templates/${pk}/hard`, `/v1/job-templates/${pk}/reinstate`]) {
      expect((await fx.call('DELETE', path, { as: alice })).status, path).toBe(403);
    }
    expect((await fx.call('GET', `/v1/job-templates/${pk}`)).body.deletion_time).toBeNull();
  });
});

describe('immutable templates', () => {
  it('refuses PUT, PATCH and POST /create to everyone, admins included (403; 401 anonymous)', async () => {
    const fx = await startWithFixtures();
    const { pk } = await importOk(fx, trainSpec());
    for (const [method, path] of [
      ['PUT', `/v1/job-templates/${pk}`],
      ['PATCH', `/v1/job-templates/${pk}`],
      ['POST', '/v1/job-templates/create'],
    ] as const) {
      expect((await fx.call(method, path, { json: { name: 'x' } })).status, `${method} ${path}`).toBe(403);
      expect((await fx.call(method, path, { as: null, json: { name: 'x' } })).status, `${method} ${path}`).toBe(401);
    }
  });
});

describe('GET /v1/job-templates/{pk}/export', () => {
  it('gives back the import format, which imports to an equal template', async () => {
    const fx = await startWithFixtures();
    const original = await importOk(fx, runSpec());
    const exported = await fx.call('GET', `/v1/job-templates/${original.pk}/export`);
    expect(exported.status).toBe(200);
    const copy = await importOk(fx, { ...exported.body, name: 'copy' });
    for (const key of ['type', 'executor_class', 'parameters', 'inputs', 'description']) expect(copy[key], key).toEqual(original[key]);
    expect((await fx.call('GET', `/v1/job-templates/${copy.pk}/get-outputs`)).body).toEqual({ 'result.csv': 'BLOB', summary: 'JSON' });
  });
});

describe('active name and version clashes written before reinstate refused them', () => {
  it('are named at start, each with its pks, for an admin to soft-delete all but one', async () => {
    const dataDir = await tempDir('ufdl-clash-');
    const databaseUrl = await databaseUrlFor(dataDir);
    onTestFinished(() => dropDatabaseFor(dataDir));
    const options = { dataDir, databaseUrl, port: 0, adminUser: ADMIN_USER, adminPassword: ADMIN_PASSWORD, logLevel: false as const };
    const older = await startTestServer({ dataDir });
    const importNew = async (description: string) =>
      (await api<{ pk: number }>(older.url, 'POST', '/v1/job-templates/import', { token: older.adminToken, json: trainSpec({ description }) })).body.pk;
    const first = await importNew('first');
    const second = await importNew('second');
    await older.close();
    // What an older server let happen: the first (soft-deleted by the second's import) reinstated.
    const edit = await buildApp(options);
    edit.app.ufdl.db.prepare('UPDATE templates SET deletion_time = NULL WHERE pk = ?').run(first);
    await edit.app.close();

    const lines: { level: number; msg: string; pks?: number[]; template?: string; version?: number }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const after = await buildApp(options, log);
    onTestFinished(() => after.app.close());
    const warnings = lines.filter((line) => line.level === 40 && /active 'ic-train' v1/.test(line.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ template: 'ic-train', version: 1, pks: [first, second] });
    expect(warnings[0]!.msg).toBe(
      `templates ${first}, ${second} are all the active 'ic-train' v1, and a lookup by that name and version may find either: soft-delete all but one (DELETE /v1/job-templates/{pk})`,
    );
  });
});
