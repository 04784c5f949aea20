/**
 * The executor contract: turn a job and its template into a {@link ChildSpec}. Executors are a local
 * allow-list keyed by the template's `executor_class` (docs/ARCHITECTURE.md, "Executors"); the agent
 * never installs code.
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import type { JobDir } from '../child/job-dir.js';
import type { ChildSpec, OutsideWork } from '../child/running-child.js';
import type { TemplateRefusal } from './errors.js';
import type { ExecutorSettings } from './settings.js';

/** What an executor needs to know about where and for whom a job runs. */
export interface ExecutorContext {
  /** The job directory, already created (`createJobDir`), inputs already downloaded into it. */
  dir: JobDir;
  /** The slot's GPU (an `nvidia-smi` index or UUID), or `null` on a CPU slot. */
  gpu: string | null;
  /** Local paths of downloaded inputs by input name (`JobOutput<…>` inputs). */
  inputPaths?: Readonly<Record<string, string>>;
  /** The server's base URL (Docker labels its containers with it). */
  serverUrl: string;
  /** This node's pk (Docker labels its containers with it). */
  nodePk: number;
  /** This node's attempt at the job (the journal's `attempts`; Docker names its containers with it). */
  attempt: number;
}

/** A job made ready to run. */
export interface PreparedJob {
  spec: ChildSpec;
  settings: ExecutorSettings;
  /** Every template parameter, resolved: what goes into `job.json`. */
  parameters: Record<string, unknown>;
}

/** One executor class. */
export interface Executor {
  /** The `executor_class` it implements, e.g. `ufdl_agent.Command`. */
  readonly executorClass: string;
  /**
   * Why this executor cannot run jobs of `template`, judged from the template alone (its declared
   * parameters and their defaults), with the agent code, or `undefined`. Cheap: called for every
   * candidate job.
   */
  check(template: TemplateJson): TemplateRefusal | undefined;
  /**
   * Resolve parameters, expand the body and build the child's command and environment. Pure: no
   * file system access, so a bad job fails here before anything is written.
   * @throws PrepareError when the job's values are unusable.
   */
  prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob;
}

/** What supervising and reporting a running child need of its executor's settings. */
export interface RunSettings extends ExecutorSettings {
  /** Work living outside the child's process group (see `ChildSpec.outside`). */
  outside?: OutsideWork | undefined;
}

/** The run settings of a prepared job. */
export function runSettingsOf(prepared: PreparedJob): RunSettings {
  return { ...prepared.settings, outside: prepared.spec.outside };
}
