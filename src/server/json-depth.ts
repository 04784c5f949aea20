/**
 * A bound on how deeply a JSON body may nest. Parsing a deep body is cheap, but whatever later walks
 * it recursively is not: `JSON.stringify` overflows the stack at a few thousand levels (a 500 on
 * create-job), and an agent pretty-printing such a value multiplies its size by its depth. No real
 * parameter value comes near the bound.
 */
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../protocol/errors.js';

/** The deepest a JSON body may nest (the body object itself is level 1). */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests deeper than `max` levels; iterative, so any depth can be measured. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (item === null || typeof item !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === 'object') pending.push([child, depth + 1]);
    }
  }
  return false;
}

/** An array or a plain object: what `JSON.parse` makes (a stream or a buffer is neither). */
function isParsedJson(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  const proto = Object.getPrototypeOf(body) as unknown;
  return Array.isArray(body) || proto === Object.prototype || proto === null;
}

/** Refuse, on every route, a parsed JSON body that nests deeper than {@link MAX_JSON_DEPTH}. */
export function limitJsonDepth(app: FastifyInstance): void {
  // Callback style: every request passes here, and an async hook costs a promise and a microtask.
  app.addHook('preValidation', (request, _reply, done) => {
    // Only bodies parsed from JSON: an upload's body is a stream (whatever its content type says).
    if (/json/i.test(request.headers['content-type'] ?? '') && isParsedJson(request.body) && nestsDeeperThan(request.body, MAX_JSON_DEPTH)) {
      done(new UfdlError('UFDL_ERR_REQ_OVER_LIMIT', `The JSON body nests more than ${MAX_JSON_DEPTH} levels deep; that is the most the server accepts`));
      return;
    }
    done();
  });
}
