import { createRequire } from 'node:module';

/** The package version, read from package.json at run time (dist/cli → ../../package.json). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
