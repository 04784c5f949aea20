/**
 * Builders for the job and template JSON the executors consume, shaped as the server sends them.
 */
import { PrepareError } from '../../../src/agent/executors/errors.js';
import type { JobJson, TemplateJson, TemplateParameter, TypedValue } from '../../../src/protocol/wire.js';

/** A template parameter with a default (`const` unless said otherwise). */
export function param(defaultValue: unknown, types: string[] = ['str'], isConst = true): TemplateParameter {
  return { types, help: '', default: defaultValue, default_type: types[0]!, const: isConst };
}

/** A template parameter without a default: each job must give its value. */
export function required(types: string[] = ['str']): TemplateParameter {
  return { types, help: '' };
}

export function template(
  executorClass: string,
  parameters: Record<string, TemplateParameter>,
  extra: Partial<TemplateJson> = {},
): TemplateJson {
  return {
    pk: 3,
    name: 'test-template',
    version: 1,
    description: '',
    scope: 'public',
    domain: null,
    licence: null,
    creator: 1,
    creation_time: '2024-01-01T00:00:00Z',
    deletion_time: null,
    type: 'Run',
    executor_class: executorClass,
    required_packages: '',
    parameters,
    ...extra,
  };
}

export function job(
  pk: number,
  parameterValues: Record<string, TypedValue> | null = {},
  inputValues: Record<string, TypedValue> = {},
): JobJson {
  return {
    pk,
    template: { pk: 3, name: 'test-template', version: 1 },
    parent: null,
    start_time: '2024-01-01T00:00:01Z',
    end_time: null,
    error_reason: null,
    input_values: inputValues,
    parameter_values: parameterValues,
    node: 5,
    outputs: [],
    description: '',
    is_cancelled: false,
    creator: 1,
    creation_time: '2024-01-01T00:00:00Z',
    deletion_time: null,
  };
}

/** A typed value as in `input_values` / `parameter_values`. */
export function typed(value: unknown, type = 'str'): TypedValue {
  return { value, type };
}

/** The PrepareError `fn` throws; fails the test when it throws nothing or something else. */
export function prepareError(fn: () => unknown): PrepareError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PrepareError) return err;
    throw err;
  }
  throw new Error('expected a PrepareError');
}
