/**
 * The body of node create and update (`POST /v1/nodes/create`, `PUT`/`PATCH /v1/nodes/{pk}`),
 * checked at the route edge with DRF-style field errors, as the reference answers them.
 */
import { NOT_AN_INTEGER, NOT_A_STRING, fieldError, integerField, requireObjectBody, stringField, type FieldErrors } from '../field-errors.js';
import type { NodeFields } from '../store/nodes.js';

/**
 * Validate a node body. `partial` (PATCH) checks only the fields present; otherwise (create, PUT)
 * `ip`, `index` and `cpu_mem` are required. Unknown and read-only keys are ignored, as DRF does.
 * `hardwareExists` asks the store whether a `hardware_generation` names a row.
 */
export function parseNodeBody(body: unknown, partial: boolean, hardwareExists: (pk: number) => boolean): Partial<NodeFields> {
  const object = requireObjectBody(body);
  const errors: FieldErrors = {};
  const fields: Partial<NodeFields> = {};
  const present = (name: string) => object[name] !== undefined || !partial;

  if (present('ip')) {
    const ip = stringField(object.ip, { maxLength: 39 });
    if (Array.isArray(ip)) errors.ip = ip;
    else fields.ip = ip;
  }
  for (const name of ['index', 'cpu_mem'] as const) {
    if (!present(name)) continue;
    const value = integerField(object[name], { min: 0 });
    if (Array.isArray(value)) errors[name] = value;
    else fields[name] = value;
  }
  if (object.driver_version !== undefined) {
    const value = object.driver_version;
    if (value === null) fields.driver_version = null;
    else if (typeof value !== 'string') errors.driver_version = [NOT_A_STRING];
    else if (value.length > 16) errors.driver_version = ['Ensure this field has no more than 16 characters.'];
    else fields.driver_version = value;
  }
  if (object.gpu_mem !== undefined) {
    const value = object.gpu_mem === null ? null : integerField(object.gpu_mem, { min: 0 });
    if (Array.isArray(value)) errors.gpu_mem = value;
    else fields.gpu_mem = value;
  }
  if (object.hardware_generation !== undefined) {
    const value = object.hardware_generation;
    if (value === null) fields.hardware_generation = null;
    else if (typeof value !== 'number' || !Number.isSafeInteger(value)) errors.hardware_generation = [NOT_AN_INTEGER];
    else if (!hardwareExists(value)) {
      errors.hardware_generation = [`Invalid pk "${value}" - object does not exist.`];
    } else fields.hardware_generation = value;
  }
  if (Object.keys(errors).length > 0) throw fieldError(errors);
  return fields;
}
