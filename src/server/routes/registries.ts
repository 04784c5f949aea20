/**
 * Read-only registries: job types and job contracts, which the reference
 * worker lists to initialise its type system; the licences the reference seeds (a template's
 * `licence` is one of their pks); and the dataset-world lists (CUDA versions, docker images,
 * frameworks, domains) that this server does not keep: they answer an empty list so that clients
 * which call them keep working.
 */
import { notFound, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema } from '../../protocol/filter.js';
import { TypeStringError } from '../../protocol/type-string.js';
import { bodyOrEmpty } from '../field-errors.js';
import { requireUser } from '../identity.js';
import { JOB_CONTRACTS, JOB_TYPES, parseJobType, type RegistryEntry } from '../job-types.js';
import { compileFilter, type FieldKind, type FieldTable } from '../store/filter-sql.js';
import { LICENCE_FIELDS, licenceJson, type LicenceRow } from '../store/licences.js';
import { parsePk } from '../route-params.js';
import type { LicenceJson } from '../../protocol/wire.js';

const REGISTRY_FIELDS: FieldTable = {
  pk: { sql: 'pk', kind: 'int' },
  name: { sql: 'name', kind: 'text' },
  pkg: { sql: 'pkg', kind: 'text' },
  cls: { sql: 'cls', kind: 'text' },
};

const EMPTY_LISTS = ['cuda', 'docker', 'frameworks', 'domains'] as const;

/** Fields of a list that has no rows here: only the names matter (no SQL runs), the kinds are the reference's. */
const fieldsOf = (kinds: Record<string, FieldKind>): FieldTable =>
  Object.fromEntries(Object.entries(kinds).map(([name, kind]) => [name, { sql: name, kind }]));

/** A relation's fields under its name (`cuda_version.version`, or Django's `cuda_version__version`). */
const under = (relation: string, kinds: Record<string, FieldKind>): Record<string, FieldKind> =>
  Object.fromEntries(Object.entries(kinds).map(([name, kind]) => [`${relation}.${name}`, kind]));

const CUDA_KINDS: Record<string, FieldKind> = { pk: 'int', version: 'real', full_version: 'text', min_driver_version: 'text' };
const FRAMEWORK_KINDS: Record<string, FieldKind> = { pk: 'int', name: 'text', version: 'text' };
const DOMAIN_KINDS: Record<string, FieldKind> = { pk: 'int', name: 'text', description: 'text' };

/**
 * The fields of the reference's models behind the lists this server does not keep (ufdl-backend's
 * CUDAVersion, DockerImage, Framework and DataDomain; a relation is the related row's pk, and its
 * fields are named through it, as the reference's filters allow). A filter naming another field is
 * refused with the 400 every other list gives, not answered with `[]` as if it had matched nothing:
 * a client's typo must not pass silently here only.
 */
const EMPTY_LIST_FIELDS: Readonly<Record<(typeof EMPTY_LISTS)[number], FieldTable>> = {
  cuda: fieldsOf(CUDA_KINDS),
  docker: fieldsOf({
    pk: 'int',
    name: 'text',
    version: 'text',
    url: 'text',
    registry_url: 'text',
    registry_username: 'text',
    registry_password: 'text',
    cuda_version: 'int',
    ...under('cuda_version', CUDA_KINDS),
    framework: 'int',
    ...under('framework', FRAMEWORK_KINDS),
    domain: 'int',
    ...under('domain', DOMAIN_KINDS),
    tasks: 'int',
    ...under('tasks', { pk: 'int', name: 'text', pkg: 'text', cls: 'text' }),
    min_hardware_generation: 'int',
    ...under('min_hardware_generation', { pk: 'int', generation: 'text', min_compute_capability: 'real', max_compute_capability: 'real' }),
    cpu: 'bool',
    licence: 'int',
    ...under('licence', { pk: 'int', name: 'text', url: 'text' }),
  }),
  frameworks: fieldsOf(FRAMEWORK_KINDS),
  domains: fieldsOf(DOMAIN_KINDS),
};

export async function registriesRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;

  /**
   * Filter an in-memory registry with the same filter compiler as every other list, through a
   * temporary VALUES table, so that filters behave (and fail) exactly as they do elsewhere.
   */
  const filtered = (entries: readonly RegistryEntry[], body: unknown): RegistryEntry[] => {
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, REGISTRY_FIELDS, { defaultOrder: 'pk ASC' });
    // The pk cast: PostgreSQL types an untyped parameter in VALUES as text, SQLite by its value. A
    // bigint, as every other pk: as PostgreSQL's 32-bit INTEGER, a filter's `pk < 2147483648` was
    // refused (400 "out of range for type integer") where SQLite answered it.
    const values = entries.map(() => '(CAST(? AS BIGINT), ?, ?, ?)').join(', ');
    const flat = entries.flatMap((e) => [e.pk, e.name, e.pkg, e.cls]);
    return db
      .prepare(
        `WITH registry(pk, name, pkg, cls) AS (VALUES ${values}) SELECT * FROM registry WHERE ${where} ORDER BY ${orderBy}`,
      )
      .all(...flat, ...params) as RegistryEntry[];
  };

  app.post('/v1/job-types/list', async (request) => {
    requireUser(request);
    return filtered(JOB_TYPES, request.body);
  });

  app.post('/v1/job-contracts/list', async (request) => {
    requireUser(request);
    return filtered(JOB_CONTRACTS, request.body);
  });

  // The reference lists server-resident values (datasets, domains…) of a type; there are none here.
  app.get<{ Params: { type: string } }>('/v1/job-types/get-all-values/:type', async (request) => {
    requireUser(request);
    try {
      parseJobType(request.params.type);
    } catch (err) {
      if (err instanceof TypeStringError) throw new UfdlError('UFDL_ERR_TYPE_PARSE', err.message);
      throw err;
    }
    return [];
  });

  app.post('/v1/licences/list', async (request): Promise<LicenceJson[]> => {
    requireUser(request);
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, LICENCE_FIELDS, { defaultOrder: 'pk ASC' });
    return (db.prepare(`SELECT * FROM licences WHERE ${where} ORDER BY ${orderBy}`).all(...params) as LicenceRow[]).map(licenceJson);
  });

  app.get<{ Params: { pk: string } }>('/v1/licences/:pk', async (request): Promise<LicenceJson> => {
    requireUser(request);
    const row = db.prepare('SELECT * FROM licences WHERE pk = ?').get(parsePk(request.params.pk)) as LicenceRow | undefined;
    if (!row) throw notFound();
    return licenceJson(row);
  });

  for (const name of EMPTY_LISTS) {
    app.post(`/v1/${name}/list`, async (request) => {
      requireUser(request);
      // Check the filter all the same, its fields too, as every other list does.
      const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
      compileFilter(spec, EMPTY_LIST_FIELDS[name], { defaultOrder: 'pk ASC' });
      return [];
    });
  }
}
