/**
 * A bound on how deeply a JSON body may nest. Parsing a deep body is cheap, but whatever later walks
 * it recursively is not: `JSON.stringify` overflows the stack at a few thousand levels (a 500 on
 * create-job), and an agent pretty-printing such a value multiplies its size by its depth. No real
 * parameter value comes near the bound.
 */
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../protocol/errors.js';
import { unstorableText } from './json-text.js';

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

/**
 * Whether a JSON text may decode to a NUL or a lone surrogate: only through an escape (`\u0000`,
 * `\ud800`–`\udfff`). JSON refuses a raw NUL, and the body's UTF-8 decoding turns a raw surrogate's
 * bytes into U+FFFD. One scan of the text in native code, so that the walk of every value, which
 * builds a path for each, runs only for the rare body that may need it.
 */
const MAY_HOLD_UNSTORABLE_TEXT = /\\u(?:0000|d[89a-f])/i;

/**
 * Refuse, on every route, a JSON body that nests deeper than {@link MAX_JSON_DEPTH} or holds text no
 * store keeps (`json-text.ts`): fastify's own JSON parser (same prototype-poisoning settings), then
 * the depth, then the text, in one step. Checked in the parser rather than in a hook, so a request
 * without a JSON body (most of a node's) pays nothing; routes with a parser of their own (uploads)
 * get a stream or a buffer, which this never sees.
 */
export function checkJsonBodies(app: FastifyInstance): void {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig;
  const parseJson = app.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parseJson(request, body as string, (err: Error | null, value?: unknown) => {
      if (err) done(err);
      else if (nestsDeeperThan(value, MAX_JSON_DEPTH)) {
        done(new UfdlError('UFDL_ERR_REQ_OVER_LIMIT', `The JSON body nests more than ${MAX_JSON_DEPTH} levels deep; that is the most the server accepts`));
      } else {
        const unstorable = MAY_HOLD_UNSTORABLE_TEXT.test(body as string) ? unstorableText(value) : undefined;
        if (unstorable === undefined) done(null, value);
        else done(new UfdlError('UFDL_ERR_REQ_BAD_BODY', `The JSON body's ${unstorable}`));
      }
    });
  });
}
