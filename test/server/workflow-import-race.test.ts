/**
 * A workflow import and a hard delete of one of its child templates on two replicas of one SQLite
 * file: the import resolves its children and inserts the workflow in one transaction, so the delete
 * either comes first (the import is refused) or waits for it (and is then refused, the template being
 * in use) — never between, which left a workflow naming a template that is gone.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowGraphJson } from '../../src/protocol/wire.js';
import type { Db } from '../../src/server/store/db.js';
import { hardDeleteTemplate } from '../../src/server/store/templates.js';
import { importWorkflowTemplate } from '../../src/server/store/workflow-import.js';
import { ADMIN_PK, startWithFixtures } from '../helpers/fixtures.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { importSpec, producerSpec } from './support/workflow-specs.js';

/** `db`, calling `meanwhile` once, just after the first statement whose text matches `when` has run. */
function interleaved(db: Database.Database, when: RegExp, meanwhile: () => void): Db {
  let done = false;
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (sql: string) => {
          const statement = target.prepare(sql);
          if (!when.test(sql)) return statement;
          const get = statement.get.bind(statement);
          return Object.assign(statement, {
            get: (...args: unknown[]) => {
              const row = get(...args);
              if (!done) {
                done = true;
                meanwhile();
              }
              return row;
            },
          });
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Db;
}

describe.skipIf(STORE_UNDER_TEST === 'postgres')('a workflow import racing a hard delete of its child template on another replica', () => {
  it('never stores a workflow whose node names a template that is gone', async () => {
    const fx = await startWithFixtures();
    const producer = await importSpec(fx, producerSpec());
    const file = join(fx.server.dataDir, 'ufdl.sqlite3');
    const importer = new Database(file);
    // The other replica does not wait for the lock: it would wait for this very test to go on.
    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    let deleted: boolean | undefined;
    const db = interleaved(importer, /^SELECT pk FROM templates WHERE name = \?/, () => {
      try {
        hardDeleteTemplate(other, producer);
        deleted = true;
      } catch {
        deleted = false;
      }
    });
    let imported: number | undefined;
    try {
      imported = importWorkflowTemplate(db, { name: 'flow', scope: 'public', licence: 'Apache 2.0' }, { nodes: { train: { name: 'producer' } }, dependencies: [] }, ADMIN_PK).pk;
    } catch (err) {
      expect(String(err)).toMatch(/unknown child template/);
    } finally {
      importer.close();
      other.close();
    }
    expect(deleted).toBeDefined();
    // Whatever the order, a stored workflow's nodes name templates that exist, and it runs.
    if (imported !== undefined) {
      const { graph } = fx.db.prepare('SELECT graph FROM templates WHERE pk = ?').get(imported) as { graph: string };
      for (const node of Object.values((JSON.parse(graph) as WorkflowGraphJson).nodes)) {
        expect(fx.db.prepare('SELECT pk FROM templates WHERE pk = ?').get(node.template.pk), `the template of a node (${node.template.pk})`).toBeDefined();
      }
      const res = await fx.call('POST', `/v1/job-templates/${imported}/create-job`, { json: { input_values: { 'train:seed': { value: 1, type: 'int' } } } });
      expect(res.status, res.text).toBe(200);
    }
  });
});
