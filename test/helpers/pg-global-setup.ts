/**
 * Global set-up of the PostgreSQL project (vitest.config.ts): one throw-away cluster for the whole
 * run, stopped when the run ends; each server under test gets its own database in it
 * (`store-under-test.ts`).
 */
import type { TestProject } from 'vitest/node';
import { startPgCluster } from './postgres.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startPgCluster();
  project.provide('pgClusterUrl', cluster.url);
  return () => cluster.stop();
}
