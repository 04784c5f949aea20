import type { Fixtures } from './fixtures.js';

/** A gauge or counter of the server's /metrics, summed over its labels. */
export async function serverMetric(f: Pick<Fixtures, 'call'>, name: string): Promise<number> {
  const text = (await f.call('GET', '/metrics')).text;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
