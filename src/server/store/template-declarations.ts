/**
 * What a template of either kind takes and gives: its inputs (name → allowed types), parameters and
 * outputs (name → type). A workable template's come from its contract (and a `Run` template's own
 * declarations); a meta-template's were derived from its children at import and stored in the same
 * columns, each named `node:name`. Create-job checks requests against these, and a workflow import
 * checks its wiring against them.
 */
import { outputsMap } from '../../protocol/output-names.js';
import { parseTypeString, printType, type TypeNode } from '../../protocol/type-string.js';
import type { TemplateInput, TemplateParameter } from '../../protocol/wire.js';
import { parseJobType } from '../job-types.js';
import { contractOf, isRun, templateParameters, type TemplateRow } from './templates.js';

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

/**
 * `get-outputs`: the contract's outputs as type strings. For `Run` templates, besides
 * `specific.outputs`, the default of an `outputs` parameter that maps names to type strings counts
 * (the example templates declare their outputs that way so they stay importable elsewhere);
 * `specific.outputs` wins on a clash.
 */
function templateOutputs(row: TemplateRow): Record<string, string> {
  const declared = Object.fromEntries(Object.entries(contractOf(row).outputs()).map(([name, type]) => [name, printType(type)]));
  if (!isRun(row)) return declared;
  const parameter = templateParameters(row).outputs;
  const fromParameter: Record<string, string> = {};
  const map = parameter && Object.hasOwn(parameter, 'default') ? outputsMap(parameter.default) : undefined;
  if (map !== undefined && isStringMap(map)) {
    for (const [name, type] of Object.entries(map)) {
      try {
        fromParameter[name] = printType(parseJobType(type));
      } catch {
        // Not a type string: the parameter means something else; ignore it.
      }
    }
  }
  return { ...fromParameter, ...declared };
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
