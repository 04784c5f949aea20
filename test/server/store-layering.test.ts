/**
 * The store takes typed input and raises errors from the protocol's registry; the request layer
 * (fastify, route modules, body parsing, the identity hook) sits above it. A store module that
 * imported any of them would tie the store to one web framework and to raw request bodies.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/agent.js';

const STORE = join(REPO, 'src/server/store');
const REQUEST_LAYER = [/^fastify$/, /^@fastify\//, /\/routes\//, /\/(identity|http-errors|field-errors|route-params)\.js$/, /^zod$/];

function importsOf(source: string): string[] {
  return [...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

describe('the server store', () => {
  it('imports nothing of the request layer', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(STORE).filter((name) => name.endsWith('.ts'))) {
      for (const target of importsOf(readFileSync(join(STORE, file), 'utf8'))) {
        if (REQUEST_LAYER.some((pattern) => pattern.test(target))) offenders.push(`${file} → ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
