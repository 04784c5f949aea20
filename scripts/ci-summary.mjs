#!/usr/bin/env node
// The CI summary over several vitest runs (the unit tests and the bounded fault campaign):
//
//   node scripts/ci-summary.mjs <vitest JSON report> [<report> …]
//
// Each report is written by `vitest run --reporter=default --reporter=json --outputFile=<report>`.
// Prints one line per report and, as the very last line, the plain total `N passed, N failed`.
// Exits 1 when anything failed. A missing or unreadable report counts as one failed test (the run
// crashed or never started, e.g. the build failed), and so does a test file that could not be
// loaded or a run that vitest itself marks unsuccessful (unhandled errors) with no failed test.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node scripts/ci-summary.mjs <vitest-json-report> [...]');
  process.exit(2);
}

let passed = 0;
let failed = 0;
for (const file of files) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    failed += 1;
    console.log(`${file}: no report (${err.code ?? err.message}): counted as 1 failed`);
    continue;
  }
  const ok = Number(report.numPassedTests ?? 0);
  let bad = Number(report.numFailedTests ?? 0);
  const notes = [];
  // A test file that failed to load has no failed assertion of its own.
  const broken = (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && !(r.assertionResults ?? []).some((a) => a.status === 'failed'),
  );
  if (broken.length > 0) {
    bad += broken.length;
    notes.push(`${broken.length} file(s) failed outside any test: ${broken.map((r) => r.name).join(', ')}`);
  }
  if (report.success === false && bad === 0) {
    bad += 1;
    notes.push('vitest reports the run unsuccessful (unhandled errors)');
  }
  passed += ok;
  failed += bad;
  console.log(`${file}: ${ok} passed, ${bad} failed${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
