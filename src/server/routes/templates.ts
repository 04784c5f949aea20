/**
 * Job templates: list, retrieve, import (admin), create-job, the contract
 * views (`get-all-parameters`, `get-types`, `get-outputs`, `get-all-matching-templates`), export
 * (admin; broken in the reference, bug B9), soft/hard delete and reinstate (admin). Templates are
 * immutable: update and create are refused for everyone (403), as in the reference.
 */
import { forbidden, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema, searchesText } from '../../protocol/filter.js';
import { isSubtype, printType, TypeStringError, type TypeNode } from '../../protocol/type-string.js';
import type { JobJson, MetaTemplateJson, TemplateJson } from '../../protocol/wire.js';
import { isContractName } from '../../protocol/contracts.js';
import { bodyOrEmpty } from '../field-errors.js';
import { parseCreateJob } from './create-job-body.js';
import { parseTemplateBody } from './template-body.js';
import { requireAdmin, requireUser } from '../identity.js';
import { jsonSchemaOf, parseJobType } from '../job-types.js';
import { parsePk } from '../route-params.js';
import { createJobFromTemplate } from '../store/create-job.js';
import { declaredInputs, declaredOutputs } from '../store/template-declarations.js';
import { exportTemplate } from '../store/template-export.js';
import { createWorkflowJob } from '../store/workflow-create.js';
import { importWorkflowTemplate } from '../store/workflow-import.js';
import { compileFilter } from '../store/filter-sql.js';
import { loadJobJson } from '../store/job-json.js';
import { emitAfterCommit, notifyAcquirable } from '../store/jobs.js';
import {
  TEMPLATE_FIELDS,
  contractOf,
  hardDeleteTemplate,
  importTemplate,
  reinstateTemplate,
  requireTemplate,
  softDeleteTemplate,
  templateJson,
  templateParameters,
  type TemplateRow,
} from '../store/templates.js';

type AnyTemplateJson = TemplateJson | MetaTemplateJson;

type PkRequest = FastifyRequest<{ Params: { pk: string } }>;

/** A type string from a client: 400 `Error parsing type-string …` when it does not parse. */
function clientType(input: string): TypeNode {
  try {
    return parseJobType(input);
  } catch (err) {
    if (err instanceof TypeStringError) throw new UfdlError('UFDL_ERR_TYPE_PARSE', err.message, { cause: err });
    throw err;
  }
}

export async function templatesRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;

  const template = (request: PkRequest): TemplateRow => requireTemplate(db, parsePk(request.params.pk));

  app.post('/v1/job-templates/list', async (request): Promise<AnyTemplateJson[]> => {
    const user = requireUser(request);
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, TEMPLATE_FIELDS, {
      softDeleteColumn: 'templates.deletion_time',
      defaultOrder: 'templates.pk ASC',
    });
    // Templates hold text users send in bulk (descriptions, scripts in parameters): a search of it
    // runs off the event loop (`store/text-searches.ts`).
    const rows = searchesText(spec)
      ? await app.ufdl.searches.all<TemplateRow>(user.pk, (guard) => `SELECT * FROM templates WHERE ${guard('templates.pk')} AND (${where}) ORDER BY ${orderBy}`, params)
      : (db.prepare(`SELECT * FROM templates WHERE ${where} ORDER BY ${orderBy}`).all(...params) as TemplateRow[]);
    return rows.map(templateJson);
  });

  // Templates come from import only; the generic create route exists but is refused.
  app.post('/v1/job-templates/create', async (request) => {
    requireUser(request);
    throw forbidden('Job templates are created with POST /v1/job-templates/import');
  });

  app.post('/v1/job-templates/import', async (request): Promise<AnyTemplateJson> => {
    const admin = requireAdmin(request);
    const parsed = parseTemplateBody(request.body);
    const row = parsed.kind === 'workflow' ? importWorkflowTemplate(db, parsed.common, parsed.graph, admin.pk) : importTemplate(db, parsed.spec, admin.pk);
    return templateJson(row);
  });

  app.get<{ Params: { contract: string }; Querystring: Record<string, string | string[]> }>(
    '/v1/job-templates/get-all-matching-templates/:contract',
    async (request): Promise<AnyTemplateJson[]> => {
      requireUser(request);
      const { contract } = request.params;
      if (!isContractName(contract)) {
        throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Bad name '${contract}': Unknown contract name`);
      }
      const wanted = Object.entries(request.query).map(([input, type]) => {
        if (Array.isArray(type)) throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Input '${input}' is given more than once`);
        return [input, clientType(type)] as const;
      });
      // Only workable templates have a contract; meta-templates never match, as in the reference.
      const rows = db.prepare('SELECT * FROM templates WHERE deletion_time IS NULL AND graph IS NULL ORDER BY pk').all() as TemplateRow[];
      return rows
        .filter((row) => {
          const bound = contractOf(row);
          if (bound.name !== contract) return false;
          const inputs = bound.inputs();
          return wanted.every(([name, type]) => Object.hasOwn(inputs, name) && inputs[name]!.types.some((allowed) => isSubtype(type, allowed)));
        })
        .map(templateJson);
    },
  );

  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk', async (request): Promise<AnyTemplateJson> => {
    requireUser(request);
    return templateJson(template(request));
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route({
      method,
      url: '/v1/job-templates/:pk',
      handler: async (request) => {
        requireUser(request);
        throw forbidden('Job templates are immutable; import a new version instead');
      },
    });
  }

  app.delete<{ Params: { pk: string } }>('/v1/job-templates/:pk', async (request, reply) => {
    requireAdmin(request);
    softDeleteTemplate(db, template(request).pk);
    return reply.code(204).send();
  });

  app.delete<{ Params: { pk: string } }>('/v1/job-templates/:pk/hard', async (request): Promise<AnyTemplateJson> => {
    requireAdmin(request);
    return templateJson(hardDeleteTemplate(db, template(request).pk));
  });

  app.delete<{ Params: { pk: string } }>('/v1/job-templates/:pk/reinstate', async (request): Promise<AnyTemplateJson> => {
    requireAdmin(request);
    return templateJson(reinstateTemplate(db, template(request).pk));
  });

  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk/export', async (request) => {
    requireAdmin(request);
    return exportTemplate(db, template(request));
  });

  app.post<{ Params: { pk: string } }>('/v1/job-templates/:pk/create-job', async (request): Promise<JobJson> => {
    const user = requireUser(request);
    const row = template(request);
    if (row.graph !== null) {
      const { pk, events } = createWorkflowJob(db, row, parseCreateJob(request.body), user.pk);
      emitAfterCommit(app.ufdl, events);
      return loadJobJson(db, pk);
    }
    const { json: job, row: created } = createJobFromTemplate(db, row, parseCreateJob(request.body), user.pk);
    notifyAcquirable(app.ufdl, job.pk);
    app.ufdl.durable.afterSync(() => app.ufdl.hub.emit('created', job.pk, created));
    return job;
  });

  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk/get-all-parameters', async (request) => {
    requireUser(request);
    const result: Record<string, unknown> = {};
    for (const [name, parameter] of Object.entries(templateParameters(template(request)))) {
      const entry: Record<string, unknown> = {
        types: Object.fromEntries(parameter.types.map((t) => [t, jsonSchemaOf(parseJobType(t))])),
        help: parameter.help,
      };
      if (Object.hasOwn(parameter, 'default')) {
        const defaultType = parameter.default_type ?? parameter.types[0]!;
        entry.default = {
          value: parameter.default,
          type: defaultType,
          schema: jsonSchemaOf(parseJobType(defaultType)),
          const: parameter.const ?? false,
        };
      }
      result[name] = entry;
    }
    return result;
  });

  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk/get-types', async (request) => {
    requireUser(request);
    const row = template(request);
    if (row.graph !== null) {
      // The reference answers 500 (BadModelType).
      throw new UfdlError('UFDL_ERR_TEMPLATE_KIND', `Template ${row.pk} is a meta-template (a workflow): it has no contract, hence no type parameters`);
    }
    return contractOf(row).types();
  });

  // A meta-template's outputs are its children's, named `node:name` (the reference answers 500).
  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk/get-outputs', async (request) => {
    requireUser(request);
    return declaredOutputs(template(request));
  });

  // Also offered for Run templates' and workflows' inputs (not in the reference): name → allowed types.
  app.get<{ Params: { pk: string } }>('/v1/job-templates/:pk/get-inputs', async (request) => {
    requireUser(request);
    const inputs = declaredInputs(template(request));
    return Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, { types: input.types.map(printType), help: input.help }]));
  });
}
