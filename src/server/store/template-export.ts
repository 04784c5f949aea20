/**
 * `GET /v1/job-templates/{pk}/export` (admin): a template back in the import format, so that it can
 * be imported here or elsewhere (the reference's export is broken, bug B9). A meta-template exports
 * its dependency graph with every child's version pinned, as the reference's `to_json` means to.
 */
import type { WorkflowGraphJson } from '../../protocol/wire.js';
import type { Db } from './db.js';
import { licenceName } from './licences.js';
import { storedGraph } from './stored-graph.js';
import { templateParameters, type TemplateRow } from './templates.js';

export function exportTemplate(db: Db, row: TemplateRow): Record<string, unknown> {
  return {
    name: row.name,
    version: row.version,
    description: row.description,
    scope: row.scope,
    ...(row.domain === null ? {} : { domain: row.domain }),
    licence: licenceName(db, row.licence_pk) ?? row.licence ?? '',
    specific: row.graph === null ? workableSpecific(row) : graphSpecific(storedGraph({ ...row, graph: row.graph })),
  };
}

function workableSpecific(row: TemplateRow): Record<string, unknown> {
  const parameters = Object.fromEntries(
    Object.entries(templateParameters(row)).map(([name, p]) => {
      const spec: Record<string, unknown> = { types: p.types };
      if (Object.hasOwn(p, 'default')) {
        spec.default = p.default;
        spec.default_type = p.default_type;
        if (p.const) spec.const = true;
      }
      spec.help = p.help;
      return [name, spec];
    }),
  );
  const specific: Record<string, unknown> = {
    job_type: row.type,
    executor_class: row.executor_class,
    required_packages: row.required_packages,
    parameters,
  };
  if (row.inputs !== null && (JSON.parse(row.inputs) as unknown[]).length > 0) specific.inputs = JSON.parse(row.inputs);
  if (row.outputs !== null) specific.outputs = JSON.parse(row.outputs);
  return specific;
}

/** The reference's DependencyGraph: nodes by name (template name, pinned version, overrides), dependencies. */
function graphSpecific(graph: WorkflowGraphJson): Record<string, unknown> {
  const nodes = Object.fromEntries(
    Object.entries(graph.nodes).map(([name, node]) => [
      name,
      {
        name: node.template.name,
        version: node.template.version,
        ...(node.parameter_default_overrides === undefined ? {} : { parameter_default_overrides: node.parameter_default_overrides }),
      },
    ]),
  );
  const dependencies = graph.dependencies.map(({ from_node, from_output, to_node, to_input }) => ({ from_node, from_output, to_node, to_input }));
  return { nodes, dependencies };
}
