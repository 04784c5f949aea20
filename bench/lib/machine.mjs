// What machine a benchmark ran on, and appending its dated row to docs/BENCHMARKS.md.
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';

export function machine() {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
  };
}

export function machineLabel() {
  const m = machine();
  return `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}`;
}

/**
 * Append `row` (an array of cells) under the `## <section>` heading of docs/BENCHMARKS.md, creating
 * the section with `header` when it is missing. Nothing is written when `UFDL_BENCH_NO_RECORD` is set.
 */
export async function recordResult(section, header, row) {
  // Trial runs (UFDL_BENCH_NO_RECORD=1) print their tables but leave the document alone.
  if (process.env.UFDL_BENCH_NO_RECORD) return;
  const file = new URL('../../docs/BENCHMARKS.md', import.meta.url);
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = '# Benchmarks\n\nProduced by `npm run bench` (see `bench/`). Each run appends a dated row.\n';
  }
  const line = `| ${row.join(' | ')} |`;
  const heading = `## ${section}`;
  if (!text.includes(`\n${heading}\n`)) {
    text += `\n${heading}\n\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n${line}\n`;
    await writeFile(file, text);
    return;
  }
  // Insert after the last table row of that section.
  const start = text.indexOf(`\n${heading}\n`) + 1;
  const next = text.indexOf('\n## ', start + heading.length);
  const end = next === -1 ? text.length : next;
  const sectionText = text.slice(start, end);
  // After the table's last row, not after a paragraph that follows the table (which would end it).
  const rows = [...sectionText.matchAll(/^\|.*$/gm)];
  const last = rows.at(-1);
  const at = last === undefined ? sectionText.replace(/\n+$/, '').length : last.index + last[0].length;
  text = `${text.slice(0, start)}${sectionText.slice(0, at)}\n${line}${sectionText.slice(at)}${text.slice(end)}`;
  await writeFile(file, text);
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function today() {
  return new Date().toISOString().slice(0, 10);
}

export async function appendRaw(text) {
  await appendFile(new URL('../../docs/BENCHMARKS.md', import.meta.url), text);
}
