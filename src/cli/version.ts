import { packageVersion } from '../package-files.js';

/** The package version, from its package.json. */
export const VERSION: string = packageVersion();
