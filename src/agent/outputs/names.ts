/**
 * Which file names may become output names (the rule is shared with the server, which applies it to
 * a template's declared outputs at import): anything that could be read as a path, or that the server
 * refuses, is skipped with a reason.
 */
export { MAX_OUTPUT_NAME_LENGTH, outputNameProblem } from '../../protocol/output-names.js';

/** The output name of the job log, which no file of the child may take. */
export const LOG_OUTPUT_NAME = 'log';
