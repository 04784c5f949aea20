/**
 * DRF-style field errors (`{"ip": ["This field is required."]}`), as the reference answers for the
 * auth and node bodies that clients parse. We add a `detail` that summarises them, so that every
 * error body of the server has one.
 */
import { UfdlError } from '../protocol/errors.js';

export type FieldErrors = Record<string, string[]>;

export const REQUIRED = 'This field is required.';
export const BLANK = 'This field may not be blank.';
export const NOT_NULL = 'This field may not be null.';
export const NOT_A_STRING = 'Not a valid string.';
export const NOT_AN_INTEGER = 'A valid integer is required.';

/** The 400 for a body whose fields failed validation. */
export function fieldError(errors: FieldErrors): UfdlError {
  const detail = Object.entries(errors)
    .map(([field, messages]) => `${field}: ${messages.join(' ')}`)
    .join('; ');
  return new UfdlError('UFDL_ERR_REQ_BAD_BODY', detail, { extra: errors });
}

/**
 * A request body for schema validation: no body at all counts as `{}` (clients post lists without
 * one), but a JSON `null` stays `null` and fails the schema like any other non-object.
 */
export function bodyOrEmpty(body: unknown): unknown {
  return body === undefined ? {} : body;
}

/** The body as an object, or the 400 DRF gives for a list, string, number or null body. */
export function requireObjectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  const got = Array.isArray(body) ? 'list' : body === null ? 'NoneType' : typeof body === 'string' ? 'str' : typeof body;
  throw fieldError({ non_field_errors: [`Invalid data. Expected a dictionary, but got ${got}.`] });
}

/** A required non-blank string field (no coercion: a number where a string goes is an error). */
export function stringField(value: unknown, options: { maxLength?: number; allowBlank?: boolean } = {}): string | string[] {
  if (value === undefined) return [REQUIRED];
  if (value === null) return [NOT_NULL];
  if (typeof value !== 'string') return [NOT_A_STRING];
  if (!options.allowBlank && value.trim() === '') return [BLANK];
  if (options.maxLength !== undefined && value.length > options.maxLength) {
    return [`Ensure this field has no more than ${options.maxLength} characters.`];
  }
  return value;
}

/** An integer field within [min, max safe integer]; booleans and numeric strings are refused. */
export function integerField(value: unknown, options: { min?: number } = {}): number | string[] {
  if (value === undefined) return [REQUIRED];
  if (value === null) return [NOT_NULL];
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return [NOT_AN_INTEGER];
  if (options.min !== undefined && value < options.min) return [`Ensure this value is greater than or equal to ${options.min}.`];
  return value;
}
