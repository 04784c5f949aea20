/**
 * The errors every layer raises the same way, built from the registry beside it (`errors.ts`): the
 * permission refusal, the unknown object, and a value that does not match its zod schema. They live
 * here, not in the request layer, so the server's store raises them without importing fastify.
 */
import type { ZodError } from 'zod';
import { UfdlError } from './errors.js';

export function forbidden(detail = 'You do not have permission to perform this action.'): UfdlError {
  return new UfdlError('UFDL_ERR_AUTH_FORBIDDEN', detail);
}

export function notFound(): UfdlError {
  return new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
}

export function describeZodError(error: ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(body)'}: ${issue.message}`)
    .join('; ');
}

/** Parse a body or param with a zod schema; a failure is a 400 naming the field. */
export function parseWith<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }, value: unknown, what = 'body'): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new UfdlError('UFDL_ERR_REQ_BAD_BODY', `Invalid ${what}: ${describeZodError(result.error)}`);
  return result.data;
}
