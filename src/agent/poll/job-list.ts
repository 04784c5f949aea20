/**
 * Reading the answer to a poll. A server may be broken, and one bad entry must not cost a node the
 * valid jobs behind it: each entry is checked with the protocol's job schema, and one that fails is
 * skipped and logged once (not at every poll). An answer that is not a list at all fails the poll,
 * as a server error would; repeated failures show in `/readyz`.
 */
import { parseJobJson } from '../../protocol/job-schema.js';
import type { JobJson } from '../../protocol/wire.js';
import type { LogPort } from '../ports.js';

/** The server answered the job list with something that is not a list. */
export class MalformedJobListError extends Error {
  constructor(got: string) {
    super(`the server answered the job list with ${got}, not a list of jobs`);
    this.name = 'MalformedJobListError';
  }
}

/** How many skipped entries are remembered so that each is logged once; then the memory starts over. */
const REMEMBERED = 1000;

export class JobListReader {
  readonly #log: LogPort;
  readonly #reported = new Set<string>();

  constructor(log: LogPort) {
    this.#log = log;
  }

  /**
   * The valid jobs of a poll's answer, in order.
   * @throws MalformedJobListError when the answer is not an array
   */
  read(body: unknown): JobJson[] {
    if (!Array.isArray(body)) throw new MalformedJobListError(describe(body));
    const jobs: JobJson[] = [];
    for (const [index, entry] of body.entries()) {
      const parsed = parseJobJson(entry);
      if ('job' in parsed) {
        jobs.push(parsed.job);
        continue;
      }
      const pk = typeof entry === 'object' && entry !== null && 'pk' in entry ? (entry as { pk: unknown }).pk : undefined;
      // Once per entry: by its pk when it has one, else by what it is.
      const key = pk !== undefined ? `pk ${JSON.stringify(pk)}` : `entry ${String(JSON.stringify(entry)).slice(0, 200)}`;
      if (this.#reported.has(key)) continue;
      if (this.#reported.size >= REMEMBERED) this.#reported.clear();
      this.#reported.add(key);
      this.#log.warn({ index, pk: pk === undefined ? undefined : JSON.stringify(pk).slice(0, 80), problem: parsed.problem }, 'skipping a malformed entry of the job list');
    }
    return jobs;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object with keys ${JSON.stringify(Object.keys(value).slice(0, 5))}`;
  return `a ${typeof value}`;
}
