/**
 * Hardware generations: the seeded, read-only table of GPU generations by compute capability, listed
 * with a filter or looked up by a compute capability. The reference's eight rows and pks always;
 * newer generations (an extension, after them) only while extensions are on, so that in
 * `--no-extensions` mode every answer is the reference's, 400 for 12.0 included.
 */
import { notFound, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema } from '../../protocol/filter.js';
import type { HardwareJson } from '../../protocol/wire.js';
import { bodyOrEmpty } from '../field-errors.js';
import { requireUser } from '../identity.js';
import { parsePk } from '../route-params.js';
import { compileFilter, type FieldTable } from '../store/filter-sql.js';

const HARDWARE_FIELDS: FieldTable = {
  pk: { sql: 'pk', kind: 'int' },
  generation: { sql: 'generation', kind: 'text' },
  min_compute_capability: { sql: 'min_compute_capability', kind: 'real' },
  max_compute_capability: { sql: 'max_compute_capability', kind: 'real' },
};

/** Python's repr of a float, which the reference's messages use: `2.0`, `7.5`. */
function pyFloat(value: number): string {
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

/** The hardware row JSON (the `extension` column is ours, not the reference's). */
function hardwareJson(row: HardwareJson & { extension: number }): HardwareJson {
  const { extension: _ours, ...json } = row;
  return json;
}

export async function hardwareRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;
  // Which rows this server shows: a comparison, since PostgreSQL refuses a bare `AND 1` (not boolean).
  const shown = app.ufdl.options.extensions ? '1 = 1' : 'extension = 0';

  app.post('/v1/hardware/list', async (request): Promise<HardwareJson[]> => {
    requireUser(request);
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, HARDWARE_FIELDS, { defaultOrder: 'pk ASC' });
    const rows = db.prepare(`SELECT * FROM hardware WHERE (${where}) AND ${shown} ORDER BY ${orderBy}`).all(...params) as (HardwareJson & { extension: number })[];
    return rows.map(hardwareJson);
  });

  app.get<{ Params: { compute: string } }>('/v1/hardware/get-hardware-generation/:compute', async (request): Promise<HardwareJson> => {
    requireUser(request);
    const raw = request.params.compute;
    const bad = (options: string) =>
      new UfdlError('UFDL_ERR_HARDWARE_RANGE', `Bad value for get_hardware_generation parameter 'compute': ${raw}${options}`);
    // A decimal like `7.5` or `8`; `NaN`, `1e3` and `0x10` are not compute capabilities.
    if (!/^\d{1,3}(\.\d{1,6})?$/.test(raw)) {
      throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Bad value for get_hardware_generation parameter 'compute': ${raw}\nnot a decimal number`);
    }
    const compute = Number(raw);
    const row = db
      .prepare(`SELECT * FROM hardware WHERE min_compute_capability <= ? AND ? < max_compute_capability AND ${shown} ORDER BY pk LIMIT 1`)
      .get(compute, compute) as (HardwareJson & { extension: number }) | undefined;
    if (row) return hardwareJson(row);
    const range = db.prepare(`SELECT MIN(min_compute_capability) AS lo, MAX(max_compute_capability) AS hi FROM hardware WHERE ${shown}`).get() as {
      lo: number | null;
      hi: number | null;
    };
    throw bad(range.lo === null || range.hi === null ? '' : `, options: [${pyFloat(range.lo)}, ${pyFloat(range.hi)})`);
  });

  app.get<{ Params: { pk: string } }>('/v1/hardware/:pk', async (request): Promise<HardwareJson> => {
    requireUser(request);
    const row = db.prepare(`SELECT * FROM hardware WHERE pk = ? AND ${shown}`).get(parsePk(request.params.pk)) as (HardwareJson & { extension: number }) | undefined;
    if (!row) throw notFound();
    return hardwareJson(row);
  });
}
