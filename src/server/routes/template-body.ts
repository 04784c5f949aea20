/**
 * The body of a template import (`POST /v1/job-templates/import`), its shape checked strictly at the
 * route edge, as the reference's JobTemplateSpec (ufdl-json-messages) is: a workable template's
 * `specific`, or a meta-template's DependencyGraph. What the types, defaults and wiring mean is
 * checked by the store (`store/templates.ts`, `store/workflow-import.ts`).
 */
import { z } from 'zod';
import { bad, type TemplateCommon, type TemplateSpec } from '../store/templates.js';
import { MAX_WORKFLOW_DEPENDENCIES, MAX_WORKFLOW_NODES } from '../store/workflow-bounds.js';
import type { GraphSpec } from '../store/workflow-import.js';

/** Zod issues as `path.to.field: message`, the path prefixed with where the checked value sits. */
function zodDetail(error: z.ZodError, prefix: string): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${[prefix, ...issue.path.map(String)].filter((part) => part !== '').join('.') || '(body)'}: ${issue.message}`)
    .join('; ');
}

const TypeString = z.string().min(1).max(256);

const ParameterSpecSchema = z.strictObject({
  types: z.array(TypeString).min(1),
  default: z.unknown().optional(),
  default_type: TypeString.optional(),
  const: z.boolean().optional(),
  help: z.string(),
});

const RunInputSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, { error: 'must be an identifier (letters, digits, _)' }),
  types: z.array(TypeString).min(1),
  help: z.string().optional(),
});

const SpecificSchema = z.strictObject({
  job_type: TypeString,
  executor_class: z.string().max(128),
  required_packages: z.string(),
  parameters: z.record(z.string().min(1).max(200), ParameterSpecSchema),
  inputs: z.array(RunInputSchema).optional(),
  outputs: z.record(z.string(), TypeString).optional(),
});

/** The reference's JobTemplateSpec (ufdl-json-messages), strict like it. */
const TemplateSpecSchema = z.strictObject({
  name: z.string().min(1).max(200),
  version: z.int().min(1).optional(),
  description: z.string().optional(),
  scope: z.string().min(1).max(16),
  licence: z.string().min(1).max(100),
  domain: z.string().length(2).optional(),
  specific: z.unknown(),
});

const OverrideSchema = z.strictObject({
  default: z.unknown().optional(),
  default_type: TypeString.optional(),
  const: z.boolean().optional(),
});

const NodeSchema = z.strictObject({
  name: z.string().min(1).max(200),
  version: z.int().min(1).optional(),
  parameter_default_overrides: z.record(z.string(), OverrideSchema).optional(),
});

const DependencySchema = z.strictObject({
  from_node: z.string(),
  from_output: z.string(),
  to_node: z.string(),
  to_input: z.string(),
});

const GraphSchema = z.strictObject({
  nodes: z
    .record(z.string(), NodeSchema)
    .refine((nodes) => Object.keys(nodes).length > 0, { error: 'a workflow needs at least one node' })
    .refine((nodes) => Object.keys(nodes).length <= MAX_WORKFLOW_NODES, { error: `at most ${MAX_WORKFLOW_NODES} nodes` }),
  dependencies: z.array(DependencySchema).max(MAX_WORKFLOW_DEPENDENCIES),
});

export type TemplateBody = { kind: 'workable'; spec: TemplateSpec } | { kind: 'workflow'; common: TemplateCommon; graph: GraphSpec };

/** Whether an import body is a meta-template: its `specific` has the keys of a DependencyGraph. */
function isWorkflowSpec(body: unknown): boolean {
  const specific = (body as { specific?: unknown } | null)?.specific;
  return typeof specific === 'object' && specific !== null && !Array.isArray(specific) && !('job_type' in specific) && ('nodes' in specific || 'dependencies' in specific);
}

/** The import body's shape, either kind; a 400 `UFDL_ERR_TEMPLATE_BAD` naming the first problems. */
export function parseTemplateBody(body: unknown): TemplateBody {
  const top = TemplateSpecSchema.safeParse(body);
  if (!top.success) throw bad(zodDetail(top.error, ''));
  const { specific: rawSpecific, ...common } = top.data;
  if (isWorkflowSpec(body)) {
    const graph = GraphSchema.safeParse(rawSpecific);
    if (!graph.success) throw bad(zodDetail(graph.error, 'specific'));
    return { kind: 'workflow', common, graph: graph.data };
  }
  if (typeof rawSpecific === 'object' && rawSpecific !== null && !Array.isArray(rawSpecific) && !('job_type' in rawSpecific)) {
    throw bad(
      'specific: a template needs either job_type, executor_class, required_packages and parameters (a workable template) or nodes and dependencies (a meta-template)',
    );
  }
  const specific = SpecificSchema.safeParse(rawSpecific);
  if (!specific.success) throw bad(zodDetail(specific.error, 'specific'));
  return { kind: 'workable', spec: { ...common, specific: specific.data } };
}
