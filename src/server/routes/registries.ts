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
import { compileFilter, type FieldTable } from '../store/filter-sql.js';
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

export async function registriesRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;

  /**
   * Filter an in-memory registry with the same filter compiler as every other list, through a
   * temporary VALUES table, so that filters behave (and fail) exactly as they do elsewhere.
   */
  const filtered = (entries: readonly RegistryEntry[], body: unknown): RegistryEntry[] => {
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, REGISTRY_FIELDS, { defaultOrder: 'pk ASC' });
    // The pk cast: PostgreSQL types an untyped parameter in VALUES as text, SQLite by its value.
    const values = entries.map(() => '(CAST(? AS INTEGER), ?, ?, ?)').join(', ');
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
      // Validate the filter all the same: a client's mistake should not pass silently here only.
      parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
      return [];
    });
  }
}
