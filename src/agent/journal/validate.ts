/**
 * Checks on values before they reach the journal, so a bug in the caller fails at the write with a
 * message naming the field, not later in recovery with a puzzling row.
 */
import { JournalError } from './errors.js';
import type { JobFields, NewOutput, OutputKey } from './records.js';

function bad(field: string, expected: string, got: unknown): never {
  throw new JournalError('JOURNAL_BAD_VALUE', `${field}: expected ${expected}, got ${JSON.stringify(got)}`);
}

export function checkPk(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) bad(field, 'a positive integer', value);
  return value;
}

function checkNullable<T>(value: T | null, check: (v: T) => void): void {
  if (value !== null) check(value);
}

function checkString(field: string, value: unknown): void {
  if (typeof value !== 'string') bad(field, 'a string', value);
}

/** Throws `JOURNAL_BAD_VALUE` for the first field of `fields` that is out of range. */
export function checkJobFields(fields: JobFields): void {
  if (fields.nodePk !== undefined) checkPk('nodePk', fields.nodePk);
  if (fields.templatePk !== undefined) checkNullable(fields.templatePk, (v) => checkPk('templatePk', v));
  if (fields.pid !== undefined) checkNullable(fields.pid, (v) => checkPk('pid', v));
  if (fields.slot !== undefined) {
    checkNullable(fields.slot, (v) => {
      if (!Number.isSafeInteger(v) || v < 0) bad('slot', 'a non-negative integer', v);
    });
  }
  if (fields.exitCode !== undefined) {
    checkNullable(fields.exitCode, (v) => {
      if (!Number.isSafeInteger(v)) bad('exitCode', 'an integer', v);
    });
  }
  if (fields.lastProgress !== undefined) {
    checkNullable(fields.lastProgress, (v) => {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) bad('lastProgress', 'a number in [0, 1]', v);
    });
  }
  if (fields.finish !== undefined) {
    checkNullable(fields.finish, (v) => {
      if (typeof v !== 'object' || v === null || (v.error !== null && typeof v.error !== 'string') || typeof v.requeue !== 'boolean') {
        bad('finish', '{ error: string | null, requeue: boolean }', v);
      }
    });
  }
  for (const key of ['jobDir', 'pidStart', 'exitSignal', 'lastError'] as const) {
    const value = fields[key];
    if (value !== undefined) checkNullable(value, (v) => checkString(key, v));
  }
}

/** The output's fields, normalized: size and SHA-256 both known, or both null. */
export interface CheckedOutput extends OutputKey {
  path: string;
  size: number | null;
  sha256: string | null;
}

/** Throws `JOURNAL_BAD_VALUE` unless the output's fields are well-formed; returns it normalized. */
export function checkNewOutput(output: NewOutput): CheckedOutput {
  for (const key of ['name', 'type', 'path'] as const) {
    if (typeof output[key] !== 'string' || output[key] === '') bad(`output ${key}`, 'a non-empty string', output[key]);
  }
  if (output.size === undefined && output.sha256 === undefined) return { name: output.name, type: output.type, path: output.path, size: null, sha256: null };
  const digest = checkDigest(output);
  return { name: output.name, type: output.type, path: output.path, ...digest };
}

/** Throws `JOURNAL_BAD_VALUE` unless `digest` is a size and 64 hex digits; returns it lower-cased. */
export function checkDigest(digest: { size?: unknown; sha256?: unknown }): { size: number; sha256: string } {
  if (!Number.isSafeInteger(digest.size) || (digest.size as number) < 0) bad('output size', 'a non-negative integer', digest.size);
  if (typeof digest.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digest.sha256)) bad('output sha256', '64 hex digits', digest.sha256);
  return { size: digest.size as number, sha256: (digest.sha256 as string).toLowerCase() };
}
