// Types of pg-cluster.mjs, for the TypeScript tests that import it (test/helpers/postgres.ts).
export declare const PG_BIN: string;
export declare const PG_USER: string;
export declare const PG_PASSWORD: string;

export interface PgCluster {
  /** `postgres://ufdl:…@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dir: string;
  /** Create a fresh database owned by the cluster's user; returns its URL. */
  createDatabase(name: string, options?: { lcCtype?: string }): Promise<string>;
  stop(): Promise<void>;
}

export declare function startPgCluster(options?: { settings?: Record<string, string | number> }): Promise<PgCluster>;
