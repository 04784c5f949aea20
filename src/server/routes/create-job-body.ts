/**
 * The body of create-job (`POST /v1/job-templates/{pk}/create-job`), its shape checked strictly at
 * the route edge (400); what the values mean is checked against the template by the store
 * (`store/job-request.ts`).
 */
import { z } from 'zod';
import { parseWith } from '../../protocol/error-constructors.js';
import { bodyOrEmpty } from '../field-errors.js';
import type { CreateJobRequest } from '../store/job-request.js';

const ValueTypePairSchema = z.strictObject({
  // Required although any JSON value (null included) is fine: `z.unknown()` alone would let it be absent.
  value: z.unknown().refine((v) => v !== undefined, { error: 'Required' }),
  type: z.string({ error: 'must be a type string' }),
});

const NotificationSchema = z.record(z.string(), z.unknown());
const TRANSITIONS = ['on_acquire', 'on_release', 'on_start', 'on_progress', 'on_finish', 'on_error', 'on_reset', 'on_abort', 'on_cancel'] as const;
const NotificationOverrideSchema = z.strictObject({
  actions: z.partialRecord(z.enum(TRANSITIONS), z.array(NotificationSchema)),
  keep_default: z.boolean().optional(),
});

const CreateJobSchema = z.strictObject({
  input_values: z.record(z.string(), ValueTypePairSchema),
  parameter_values: z.record(z.string(), ValueTypePairSchema).optional(),
  description: z.string().optional(),
  // Accepted for compatibility; web-socket watching works for every job here (docs/COMPATIBILITY.md), and the
  // print/e-mail notifications of the reference are not sent.
  notification_override: NotificationOverrideSchema.optional(),
  child_notification_overrides: z.record(z.string(), NotificationOverrideSchema).optional(),
});

export function parseCreateJob(body: unknown): CreateJobRequest {
  return parseWith(CreateJobSchema, bodyOrEmpty(body));
}
