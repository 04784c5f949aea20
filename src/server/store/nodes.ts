/**
 * Worker nodes in the database: the node JSON, the (ip, index) uniqueness rule, and the reference's
 * "delete only if nothing refers to it" rule.
 */
import { UfdlError } from '../../protocol/errors.js';
import type { NodeJson } from '../../protocol/wire.js';
import type { NodeRow } from '../context.js';
import type { Db } from './db.js';
import type { FieldTable } from './filter-sql.js';

/** The writable columns of a node; `last_seen`, `current_job` and `owner` are server-managed. */
export interface NodeFields {
  ip: string;
  index: number;
  cpu_mem: number;
  driver_version: string | null;
  hardware_generation: number | null;
  gpu_mem: number | null;
}

export const NODE_FIELDS: FieldTable = {
  pk: { sql: 'nodes.pk', kind: 'int' },
  ip: { sql: 'nodes.ip', kind: 'text' },
  index: { sql: 'nodes."index"', kind: 'int' },
  driver_version: { sql: 'nodes.driver_version', kind: 'text' },
  hardware_generation: { sql: 'nodes.hardware_generation', kind: 'int' },
  gpu_mem: { sql: 'nodes.gpu_mem', kind: 'int' },
  cpu_mem: { sql: 'nodes.cpu_mem', kind: 'int' },
  last_seen: { sql: 'nodes.last_seen', kind: 'time' },
  current_job: { sql: 'nodes.current_job', kind: 'int' },
};

export function nodeJson(row: NodeRow): NodeJson {
  return {
    pk: row.pk,
    ip: row.ip,
    index: row.index,
    driver_version: row.driver_version,
    hardware_generation: row.hardware_generation,
    gpu_mem: row.gpu_mem,
    cpu_mem: row.cpu_mem,
    last_seen: row.last_seen,
    current_job: row.current_job,
  };
}

export function getNode(db: Db, pk: number): NodeRow | undefined {
  return db.prepare('SELECT * FROM nodes WHERE pk = ?').get(pk) as NodeRow | undefined;
}

/** Whether hardware generation `pk` exists (a node's `hardware_generation` must name one). */
export function hardwareExists(db: Db, pk: number): boolean {
  return db.prepare('SELECT 1 FROM hardware WHERE pk = ?').get(pk) !== undefined;
}

function duplicate(db: Db, ip: string, index: number, exceptPk?: number): UfdlError | undefined {
  const other = db.prepare('SELECT pk FROM nodes WHERE ip = ? AND "index" = ? AND pk IS NOT ?').get(ip, index, exceptPk ?? null) as
    | { pk: number }
    | undefined;
  if (!other) return undefined;
  return new UfdlError(
    'UFDL_ERR_NODE_DUPLICATE',
    `A node with ip '${ip}' and index ${index} already exists (node ${other.pk}); find it with POST /v1/nodes/list and use its pk as Node-Id`,
  );
}

/** Insert a node owned by `owner`; a taken (ip, index) is a 400 `UFDL_ERR_NODE_DUPLICATE`. */
export function createNode(db: Db, fields: NodeFields, owner: number): NodeRow {
  return db.transaction(() => {
    const taken = duplicate(db, fields.ip, fields.index);
    if (taken) throw taken;
    const result = db
      .prepare(
        `INSERT INTO nodes (ip, "index", driver_version, hardware_generation, gpu_mem, cpu_mem, owner)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(fields.ip, fields.index, fields.driver_version, fields.hardware_generation, fields.gpu_mem, fields.cpu_mem, owner);
    return getNode(db, Number(result.lastInsertRowid))!;
  })();
}

/** Apply validated fields to node `pk`, keeping (ip, index) unique. */
export function updateNode(db: Db, pk: number, fields: Partial<NodeFields>): NodeRow {
  return db.transaction(() => {
    const current = getNode(db, pk);
    if (!current) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
    const next = { ...current, ...fields };
    if (next.ip !== current.ip || next.index !== current.index) {
      const taken = duplicate(db, next.ip, next.index, pk);
      if (taken) throw taken;
    }
    db.prepare(
      `UPDATE nodes SET ip = ?, "index" = ?, driver_version = ?, hardware_generation = ?, gpu_mem = ?, cpu_mem = ?
       WHERE pk = ?`,
    ).run(next.ip, next.index, next.driver_version, next.hardware_generation, next.gpu_mem, next.cpu_mem, pk);
    return getNode(db, pk)!;
  })();
}

/**
 * Delete node `pk` unless a job refers to it; then keep it silently, as the reference does, so the
 * jobs keep a valid reference. Returns whether the row was removed.
 */
export function deleteNodeIfUnreferenced(db: Db, pk: number): boolean {
  return db.transaction(() => {
    if (db.prepare('SELECT 1 FROM jobs WHERE node = ? LIMIT 1').get(pk)) return false;
    return db.prepare('DELETE FROM nodes WHERE pk = ?').run(pk).changes > 0;
  })();
}
