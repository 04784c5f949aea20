/**
 * The job-type registry (`POST /v1/job-types/list`): the type names a type string
 * may use, with the python package and class the reference maps each to, and the JSON schema of the
 * values of a type (for `get-all-parameters`).
 */
import { parseTypeString, TypeStringError, type TypeArg, type TypeNode } from '../protocol/type-string.js';

export interface RegistryEntry {
  pk: number;
  name: string;
  pkg: string;
  cls: string;
}

// The reference's table, in its order (ufdl-backend core_app migrations job_types.csv).
const TYPES: ReadonlyArray<readonly [name: string, cls: string]> = [
  ['UFDLType', 'base.UFDLType'],
  ['UFDLJSONType', 'base.UFDLJSONType'],
  ['FiniteJSONType', 'base.FiniteJSONType'],
  ['ServerResidentType', 'base.ServerResidentType'],
  ['NamedServerType', 'base.NamedServerType'],
  ['ValueType', 'base.ValueType'],
  ['str', 'base.String'],
  ['int', 'base.Integer'],
  ['float', 'base.Float'],
  ['bool', 'base.Boolean'],
  ['Array', 'standard.container.Array'],
  ['Map', 'standard.container.Map'],
  ['CUDAVersion', 'standard.server.CUDAVersion'],
  ['Dataset', 'standard.server.Dataset'],
  ['DockerImage', 'standard.server.DockerImage'],
  ['Domain', 'standard.server.Domain'],
  ['Framework', 'standard.server.Framework'],
  ['Hardware', 'standard.server.Hardware'],
  ['PretrainedModel', 'standard.server.PretrainedModel'],
  ['BLOB', 'standard.util.BLOB'],
  ['Compressed', 'standard.util.Compressed'],
  ['JSON', 'standard.util.JSON'],
  ['Nothing', 'standard.util.Nothing'],
  ['JobOutput', 'standard.JobOutput'],
  ['Model', 'standard.Model'],
  ['Name', 'standard.Name'],
  ['PK', 'standard.PK'],
];

export const JOB_TYPES: readonly RegistryEntry[] = TYPES.map(([name, cls], i) => ({
  pk: i + 1,
  name,
  pkg: 'ufdl.jobtypes',
  cls: `ufdl.jobtypes.${cls}`,
}));

/** `POST /v1/job-contracts/list`, the reference's three and `Run` (the contracts: protocol/contracts.ts). */
export const JOB_CONTRACTS: readonly RegistryEntry[] = [
  { pk: 1, name: 'Predict', pkg: 'ufdl.jobcontracts', cls: 'ufdl.jobcontracts.standard.Predict' },
  { pk: 2, name: 'Train', pkg: 'ufdl.jobcontracts', cls: 'ufdl.jobcontracts.standard.Train' },
  { pk: 3, name: 'Export', pkg: 'ufdl.jobcontracts', cls: 'ufdl.jobcontracts.standard.Export' },
  { pk: 4, name: 'Run', pkg: 'ufdl_agent', cls: 'ufdl_agent.contracts.Run' },
];

const KNOWN = new Set(TYPES.map(([name]) => name));

/**
 * Parse a type string and check that every type name in it is a registered job type, as the
 * reference's parser does. Throws {@link TypeStringError} (`Error parsing type-string "…": …`).
 */
export function parseJobType(input: string): TypeNode {
  const node = parseTypeString(input);
  const unknown = unknownName(node);
  if (unknown !== undefined) throw new TypeStringError(input, `unknown type name '${unknown}'`);
  return node;
}

/** The first type name in `arg` that is not a registered job type, if any. */
export function unknownName(arg: TypeArg): string | undefined {
  if (arg.kind !== 'type') return undefined;
  if (!KNOWN.has(arg.name)) return arg.name;
  for (const child of arg.args) {
    const found = unknownName(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The JSON schema of the values of a type: what a client may send as `value` for it. */
export function jsonSchemaOf(type: TypeNode): Record<string, unknown> {
  switch (type.name) {
    case 'str':
    case 'Name':
      return { type: 'string' };
    case 'int':
      return { type: 'integer' };
    case 'float':
      return { type: 'number' };
    case 'bool':
      return { type: 'boolean' };
    case 'PK':
    case 'JobOutput':
      return { type: 'integer', minimum: 1 };
    case 'Array': {
      const inner = type.args[0];
      return inner?.kind === 'type' ? { type: 'array', items: jsonSchemaOf(inner) } : { type: 'array' };
    }
    case 'Map':
      return { type: 'object' };
    default:
      // JSON and the server-resident and binary types: any JSON value.
      return {};
  }
}
