/**
 * Job contracts: what a template's `type` (e.g. `Train<Domain<'…'>, Framework<'…', '1'>>`) promises
 * about the job's inputs and outputs. The reference's `Train`, `Predict` and `Export`, plus our
 * extension `Run`, whose inputs and outputs the template declares itself (an `inputs` list and an
 * `outputs` map in `specific`). Shared: the server checks jobs against them, and clients derive the
 * inputs of a template the reference does not list (its template JSON has no `inputs`).
 *
 * A contract's type parameters are substituted into its input and output types: a
 * `Train<D, F>` template takes `dataset: PK<Dataset<D>>` and produces `model: Model<D, F>`.
 */
import { parseTypeString, printType, type TypeNode } from './type-string.js';

export type ContractName = 'Train' | 'Predict' | 'Export' | 'Run';

/** One input of a contract: the types a value may have (any one of them) and a help text. */
export interface ContractInput {
  types: TypeNode[];
  help: string;
}

/** What a `Run` template declares for itself; empty for the other contracts. */
export interface Declarations {
  inputs: ReadonlyArray<{ name: string; types: TypeNode[]; help: string }>;
  outputs: Readonly<Record<string, TypeNode>>;
}

interface ContractDef {
  name: ContractName;
  /** The type parameters in order, each with the type name its argument must have. */
  params: ReadonlyArray<{ name: string; base: string }>;
  inputs(args: TypeNode[], declared: Declarations): Record<string, ContractInput>;
  outputs(args: TypeNode[], declared: Declarations): Record<string, TypeNode>;
}

const t = (name: string, ...args: TypeNode[]): TypeNode => ({ kind: 'type', name, args });

const DOMAIN_FRAMEWORK = [
  { name: 'DomainType', base: 'Domain' },
  { name: 'FrameworkType', base: 'Framework' },
] as const;

const CONTRACTS: Readonly<Record<ContractName, ContractDef>> = {
  Train: {
    name: 'Train',
    params: DOMAIN_FRAMEWORK,
    inputs: ([domain]) => ({ dataset: { types: [t('PK', t('Dataset', domain!))], help: 'The dataset to train on' } }),
    outputs: ([domain, framework]) => ({ model: t('Model', domain!, framework!) }),
  },
  Predict: {
    name: 'Predict',
    params: DOMAIN_FRAMEWORK,
    inputs: ([domain, framework]) => ({
      model: { types: [t('JobOutput', t('Model', domain!, framework!))], help: 'The trained model to predict with' },
      // A dataset by primary key or by name.
      dataset: { types: [t('PK', t('Dataset', domain!)), t('Name', t('Dataset', domain!))], help: 'The dataset to predict on' },
    }),
    outputs: ([domain]) => ({ predictions: t('PK', t('Dataset', domain!)) }),
  },
  // The reference's Export is a placeholder: no type parameters, inputs or outputs.
  Export: { name: 'Export', params: [], inputs: () => ({}), outputs: () => ({}) },
  Run: {
    name: 'Run',
    params: [],
    inputs: (_args, declared) =>
      Object.fromEntries(declared.inputs.map((input) => [input.name, { types: input.types, help: input.help }])),
    outputs: (_args, declared) => ({ ...declared.outputs }),
  },
};

export function isContractName(name: string): name is ContractName {
  return Object.hasOwn(CONTRACTS, name);
}

/** A template's contract with its type arguments bound. */
export class BoundContract {
  private constructor(
    private readonly def: ContractDef,
    private readonly args: TypeNode[],
    private readonly declared: Declarations,
  ) {}

  /**
   * Bind a parsed contract type string. Throws an `Error` whose message says what is wrong (the
   * caller wraps it as a bad template): unknown contract, wrong number or kind of type arguments.
   */
  static bind(type: TypeNode, declared: Declarations = { inputs: [], outputs: {} }): BoundContract {
    if (!isContractName(type.name)) {
      throw new Error(`unknown contract '${type.name}'; known: ${Object.keys(CONTRACTS).join(', ')}`);
    }
    const def = CONTRACTS[type.name];
    if (type.args.length !== def.params.length) {
      const expected = def.params.length === 0 ? 'no type arguments' : `${def.params.length} (${def.params.map((p) => p.name).join(', ')})`;
      throw new Error(`contract ${def.name} takes ${expected}, got ${type.args.length}`);
    }
    const args: TypeNode[] = [];
    for (const [i, param] of def.params.entries()) {
      const arg = type.args[i]!;
      if (arg.kind !== 'type' || arg.name !== param.base) {
        throw new Error(`${def.name}'s ${param.name} must be a ${param.base}<…>, got ${printType(arg)}`);
      }
      args.push(arg);
    }
    if (def.name !== 'Run' && (declared.inputs.length > 0 || Object.keys(declared.outputs).length > 0)) {
      throw new Error(`only Run templates declare their own inputs and outputs; ${def.name} defines them`);
    }
    return new BoundContract(def, args, declared);
  }

  get name(): ContractName {
    return this.def.name;
  }

  /** `get-types`: type parameter name → printed type argument. */
  types(): Record<string, string> {
    return Object.fromEntries(this.def.params.map((p, i) => [p.name, printType(this.args[i]!)]));
  }

  inputs(): Record<string, ContractInput> {
    return this.def.inputs(this.args, this.declared);
  }

  outputs(): Record<string, TypeNode> {
    return this.def.outputs(this.args, this.declared);
  }
}

/**
 * The inputs of a template of contract `type` (a type string such as the template JSON's `type`),
 * each with the type strings a value may have: what a client needs to type `--input dataset=3`.
 * Undefined when the type is not a contract with fixed inputs (`Run` lists its own; a type string
 * that does not parse or names no contract).
 */
export function contractInputTypes(type: string): Record<string, string[]> | undefined {
  let bound: BoundContract;
  try {
    bound = BoundContract.bind(parseTypeString(type));
  } catch {
    return undefined;
  }
  if (bound.name === 'Run') return undefined;
  return Object.fromEntries(Object.entries(bound.inputs()).map(([name, input]) => [name, input.types.map(printType)]));
}
