/**
 * Template writes racing another replica's writes on one SQLite file (driven through two connections
 * to it, the interleaving placed by a proxy of the store's handle): a workflow import and a hard
 * delete of one of its child templates; an import, a hard delete or a reinstate and any write.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowGraphJson } from '../../src/protocol/wire.js';
import type { Db } from '../../src/server/store/db.js';
import { hardDeleteTemplate, importTemplate, reinstateTemplate } from '../../src/server/store/templates.js';
import { importWorkflowTemplate } from '../../src/server/store/workflow-import.js';
import { ADMIN_PK, startWithFixtures } from '../helpers/fixtures.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { runSpec } from './support/template-specs.js';
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

/**
 * The import resolves its children and inserts the workflow in one transaction, so the delete either
 * comes first (the import is refused) or waits for it (and is then refused, the template being in
 * use) — never between, which left a workflow naming a template that is gone.
 */
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

/**
 * A write of another replica between a template write's first read and its first write: on SQLite
 * (WAL), a transaction begun deferred cannot then write any more (SQLITE_BUSY_SNAPSHOT, a 500), so
 * the template writes that read first must take the write lock up front, as transitions do.
 */
describe.skipIf(STORE_UNDER_TEST === 'postgres')('template writes while another replica writes', () => {
  async function replicas() {
    const fx = await startWithFixtures();
    const file = join(fx.server.dataDir, 'ufdl.sqlite3');
    const mine = new Database(file);
    mine.pragma('busy_timeout = 5000');
    const other = new Database(file);
    other.pragma('busy_timeout = 0');
    let version = 0;
    /** The other replica's write: the import of an unrelated template (refused while this one holds the lock). */
    const otherWrites = () => {
      try {
        importTemplate(other, { ...(runSpec({ name: 'elsewhere', version: ++version }) as any) }, ADMIN_PK);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('SQLITE_BUSY');
      }
    };
    return { fx, mine, other, otherWrites, close: () => (mine.close(), other.close()) };
  }

  it('imports a new version of a template', async () => {
    const { mine, otherWrites, close } = await replicas();
    try {
      const db = interleaved(mine, /^SELECT MAX\(version\)/, otherWrites);
      const spec = runSpec({ name: 'here', version: undefined }) as any;
      expect(importTemplate(db, spec, ADMIN_PK).version).toBe(1);
    } finally {
      close();
    }
  });

  it('hard-deletes a template', async () => {
    const { fx, mine, otherWrites, close } = await replicas();
    try {
      const pk = await importSpec(fx, runSpec({ name: 'doomed' }));
      const db = interleaved(mine, /^SELECT COUNT\(\*\) AS n FROM jobs WHERE template/, otherWrites);
      expect(hardDeleteTemplate(db, pk).pk).toBe(pk);
    } finally {
      close();
    }
  });

  it('reinstates a template', async () => {
    const { fx, mine, otherWrites, close } = await replicas();
    try {
      const pk = await importSpec(fx, runSpec({ name: 'back' }));
      expect((await fx.call('DELETE', `/v1/job-templates/${pk}`)).status).toBe(204);
      // Between its check for another active `back v1` and its update.
      const db = interleaved(mine, /^SELECT pk FROM templates WHERE name = \? AND version = \? AND deletion_time IS NULL/, otherWrites);
      expect(reinstateTemplate(db, pk).deletion_time).toBeNull();
    } finally {
      close();
    }
  });
});
