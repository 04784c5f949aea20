/**
 * Licences (the reference's read-only `/v1/licences` registry, seeded by migration 4 with its names
 * and pks). A template's `licence` is a licence pk in the template JSON, as the reference returns it
 * and its TS client declares it; import takes a name, as the reference's import format does.
 */
import type { Logger } from 'pino';
import { UfdlError } from '../../protocol/errors.js';
import type { LicenceJson } from '../../protocol/wire.js';
import { cachedStatement, type Db } from './db.js';
import type { FieldTable } from './filter-sql.js';

export interface LicenceRow {
  pk: number;
  name: string;
  url: string;
  /** JSON arrays of names. */
  permissions: string;
  conditions: string;
  limitations: string;
  domains: string;
}

export const LICENCE_FIELDS: FieldTable = {
  pk: { sql: 'pk', kind: 'int' },
  name: { sql: 'name', kind: 'text' },
  url: { sql: 'url', kind: 'text' },
};

/**
 * SPDX identifiers of the seeded licences, so that `"licence": "Apache-2.0"` imports like the
 * reference's own name `"Apache 2.0"`. Names are matched without regard to case.
 */
const SPDX_NAMES: Readonly<Record<string, string>> = {
  'agpl-3.0': 'AGPL3',
  'agpl-3.0-only': 'AGPL3',
  'apache-2.0': 'Apache 2.0',
  'bsd-2-clause': 'BSD 2-clause',
  'bsd-3-clause': 'BSD 3-clause',
  'cc0-1.0': 'CC0',
  'cc-by-4.0': 'CC-BY-4.0',
  'cc-by-sa-4.0': 'CC-BY-SA-4.0',
  'gpl-2.0': 'GPL2',
  'gpl-2.0-only': 'GPL2',
  'gpl-3.0': 'GPL3',
  'gpl-3.0-only': 'GPL3',
  'lgpl-3.0': 'LGPL3',
  'lgpl-3.0-only': 'LGPL3',
  mit: 'MIT',
  'mpl-2.0': 'Mozilla Public License 2.0',
  unlicense: 'The Unlicense',
};

export function licenceJson(row: LicenceRow): LicenceJson {
  return {
    pk: row.pk,
    name: row.name,
    url: row.url,
    permissions: JSON.parse(row.permissions) as string[],
    conditions: JSON.parse(row.conditions) as string[],
    limitations: JSON.parse(row.limitations) as string[],
    domains: JSON.parse(row.domains) as string[],
  };
}

/** The pk of the licence called `name` (its name in any case, or its SPDX identifier), if any. */
export function findLicencePk(db: Db, name: string): number | undefined {
  const spelled = SPDX_NAMES[name.trim().toLowerCase()] ?? name.trim();
  const row = cachedStatement(db, 'SELECT pk FROM licences WHERE name = ? COLLATE NOCASE').get(spelled) as { pk: number } | undefined;
  return row?.pk;
}

/** {@link findLicencePk}, or a 400 listing the known names (the reference refuses unknown ones too). */
export function requireLicencePk(db: Db, name: string): number {
  const pk = findLicencePk(db, name);
  if (pk !== undefined) return pk;
  const known = (cachedStatement(db, 'SELECT name FROM licences ORDER BY pk').all() as { name: string }[]).map((r) => r.name);
  throw new UfdlError('UFDL_ERR_TEMPLATE_BAD', `Bad job template: licence: unknown licence '${name}'; known: ${known.join(', ')} (or their SPDX identifiers)`);
}

/** The licence's name by pk (for export in the import format), if it exists. */
export function licenceName(db: Db, pk: number | null): string | undefined {
  if (pk === null) return undefined;
  return (cachedStatement(db, 'SELECT name FROM licences WHERE pk = ?').get(pk) as { name: string } | undefined)?.name;
}

/**
 * Templates imported before licences had pks hold only a name: give them the pk of that licence.
 * Names no licence has keep a null pk (and say so once per start).
 */
export function matchTemplateLicences(db: Db, log: Logger): void {
  const unmatched = db.prepare('SELECT pk, licence FROM templates WHERE licence_pk IS NULL AND licence IS NOT NULL').all() as { pk: number; licence: string }[];
  if (unmatched.length === 0) return;
  const update = db.prepare('UPDATE templates SET licence_pk = ? WHERE pk = ?');
  const unknown: string[] = [];
  db.transaction(() => {
    for (const row of unmatched) {
      const pk = findLicencePk(db, row.licence);
      if (pk === undefined) unknown.push(row.licence);
      else update.run(pk, row.pk);
    }
  })();
  if (unknown.length > 0) log.warn({ licences: [...new Set(unknown)] }, 'templates name licences this server does not know; their licence shows as null');
}
