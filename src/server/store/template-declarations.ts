/**
 * What a template of either kind takes and gives: its inputs (name → allowed types), parameters and
 * outputs (name → type). A workable template's come from its contract (and a `Run` template's own
 * declarations); a meta-template's were derived from its children at import and stored in the same
 * columns, each named `node:name`. Create-job checks requests against these, and a workflow import
 * checks its wiring against them.
 */
import { parseTypeString, type TypeNode } from '../../protocol/type-string.js';
import type { TemplateInput, TemplateParameter } from '../../protocol/wire.js';
import { contractOf, templateOutputs, templateParameters, type TemplateRow } from './templates.js';

export interface InputDeclaration {
  types: TypeNode[];
  help: string;
}

export function declaredInputs(row: TemplateRow): Record<string, InputDeclaration> {
  if (row.graph === null) return contractOf(row).inputs();
  const inputs = JSON.parse(row.inputs ?? '[]') as TemplateInput[];
  return Object.fromEntries(inputs.map((input) => [input.name, { types: input.types.map((t) => parseTypeString(t)), help: input.help ?? '' }]));
}

export function declaredParameters(row: TemplateRow): Record<string, TemplateParameter> {
  return templateParameters(row);
}

/** Output name → normalised type string. */
export function declaredOutputs(row: TemplateRow): Record<string, string> {
  if (row.graph === null) return templateOutputs(row);
  return JSON.parse(row.outputs ?? '{}') as Record<string, string>;
}
