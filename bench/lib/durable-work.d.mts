// Types of durable-work.mjs, for the TypeScript test that drives it in-process (test/bench/durable-work.test.ts).
export declare class Refused extends Error {
  status: number;
}

export type FloorJob = { pk: number; node: number | null; start_time: string | null; end_time: string | null; [key: string]: unknown };

export interface DurableWork {
  caller(authorization: string | undefined, nodeId: string | undefined): number | null;
  createJob(templatePk: number, spec: Record<string, unknown>, nodePk: number | null): FloorJob;
  acquire(pk: number, nodePk: number): FloorJob;
  start(pk: number, nodePk: number): FloorJob;
  progress(pk: number, nodePk: number, amount: number): FloorJob;
  output(pk: number, nodePk: number, name: string, type: string, content: Buffer): FloorJob;
  finish(pk: number, nodePk: number, success: boolean): FloorJob;
  whenDurable(answer: () => void): void;
  close(): Promise<void>;
}

export declare function openDurableWork(options: { dataDir: string; nodePks: number[] }): Promise<DurableWork>;
