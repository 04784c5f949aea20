/**
 * The live view of a workflow (a job of a meta-template) for `watch` and `submit --wait`: its graph
 * once, then one line each time a child is created or changes state, read from the server's
 * `GET /v1/jobs/{pk}/workflow` (or, on a server without it such as the reference, from the jobs whose
 * `parent` is the workflow, each named by its description as the reference names it).
 */
import type { UfdlClient } from '../client/index.js';
import type { JobJson, WorkflowJson } from '../protocol/wire.js';
import { describeJob, jobState } from './job-state.js';
import type { LiveView } from './output.js';

/** A node of the workflow as last read: its job, if created. */
interface NodeSnapshot {
  name: string;
  template?: string;
  dependsOn: string[];
  job: JobJson | null;
}

/** The node a child job runs, from the description the reference gives it: `child job '<node>' of …`. */
export function childNodeName(job: Pick<JobJson, 'description' | 'pk'>): string {
  return /^child job '([^']+)' of /.exec(job.description)?.[1] ?? `job ${job.pk}`;
}

export class WorkflowView {
  readonly #client: UfdlClient;
  readonly #pk: number;
  readonly #view: LiveView;
  /** What was last printed per node: the job pk and state. */
  readonly #shown = new Map<string, string>();
  #graphShown = false;

  private constructor(client: UfdlClient, pk: number, view: LiveView) {
    this.#client = client;
    this.#pk = pk;
    this.#view = view;
  }

  /** The view of `job` if it is a workflow (its graph on our server; its children elsewhere), else undefined. */
  static async detect(client: UfdlClient, job: JobJson, view: LiveView): Promise<WorkflowView | undefined> {
    const workflow = new WorkflowView(client, job.pk, view);
    const nodes = await workflow.#read();
    return nodes.nodes.length > 0 ? workflow : undefined;
  }

  /** Read the workflow, print what changed, and return the parent job as read. */
  async refresh(): Promise<JobJson> {
    const { parent, nodes } = await this.#read();
    if (!this.#graphShown) {
      this.#graphShown = true;
      this.#view.line(`job ${this.#pk}: a workflow of ${nodes.length} node${nodes.length === 1 ? '' : 's'}`);
      for (const node of nodes) {
        const after = node.dependsOn.length > 0 ? `, after ${node.dependsOn.join(', ')}` : '';
        this.#view.line(`  ${node.name}${node.template ? ` (${node.template})` : ''}${after}`);
      }
    }
    for (const node of nodes) {
      if (!node.job) continue;
      const state = `${node.job.pk} ${describeJob(node.job)}`;
      if (this.#shown.get(node.name) === state) continue;
      const created = !this.#shown.has(node.name);
      this.#shown.set(node.name, state);
      this.#view.line(`job ${this.#pk}: ${node.name} (job ${node.job.pk})${created && jobState(node.job) === 'created' ? ' created' : `: ${describeJob(node.job)}`}`);
    }
    return parent ?? (await this.#client.getJob(this.#pk));
  }

  async #read(): Promise<{ parent: JobJson | undefined; nodes: NodeSnapshot[] }> {
    const workflow: WorkflowJson | null = await this.#client.getWorkflow(this.#pk);
    if (workflow) {
      return {
        parent: workflow.job,
        nodes: workflow.nodes.map((n) => ({ name: n.name, template: `${n.template.name}@${n.template.version}`, dependsOn: n.depends_on, job: n.job })),
      };
    }
    const children = await this.#client.listJobs({ expressions: [{ type: 'exact', field: 'parent', value: this.#pk }], order_by: [{ field: 'pk' }] });
    return {
      parent: undefined,
      nodes: children
        .filter((child) => child.parent === this.#pk)
        .map((child) => ({ name: childNodeName(child), template: `${child.template.name}@${child.template.version}`, dependsOn: [], job: child })),
    };
  }
}
