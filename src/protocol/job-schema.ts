/**
 * A job as a client must be able to rely on it (the shape of `JobJson` in `wire.ts`), as a schema, so
 * that a client can check what a server sends instead of trusting it: one malformed entry in a job
 * list must not stop a node from running the valid jobs behind it. The fields a worker acts on are
 * checked strictly; the others only for their type, and keys the schema does not know pass through.
 */
import { z } from 'zod';
import type { JobJson } from './wire.js';

const Pk = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Time = z.string().nullable();
const TypedValue = z.object({ value: z.unknown(), type: z.string() });

export const JobJsonSchema = z.looseObject({
  pk: Pk,
  template: z.looseObject({ pk: Pk, name: z.string(), version: z.number() }),
  parent: Pk.nullable().optional(),
  start_time: Time,
  end_time: Time,
  error_reason: z.string().nullable(),
  input_values: z.record(z.string(), TypedValue),
  parameter_values: z.record(z.string(), TypedValue).nullable().optional(),
  node: Pk.nullable(),
  outputs: z.array(z.looseObject({ pk: Pk, name: z.string(), type: z.string() })).optional(),
  description: z.string().nullable().optional(),
  is_cancelled: z.boolean().optional(),
  creator: Pk.nullable().optional(),
  creation_time: z.string().optional(),
  deletion_time: Time.optional(),
});

/** The job, or why it is not one (`field.path: problem`, the first few). */
export function parseJobJson(value: unknown): { job: JobJson } | { problem: string } {
  const result = JobJsonSchema.safeParse(value);
  if (result.success) return { job: result.data as unknown as JobJson };
  const problem = result.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(entry)'}: ${issue.message}`)
    .join('; ');
  return { problem };
}
