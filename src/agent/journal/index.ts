/**
 * The agent's crash-safe local journal (docs/ARCHITECTURE.md, "The journal"). Import from here.
 */
export { Journal, type JournalOptions } from './journal.js';
export { openJournal } from './open.js';
export { openReadOnly, type JournalReader } from './read-only.js';
export { JournalView } from './queries.js';
export {
  JOB_STATES,
  JOB_EDGES,
  OUTPUT_STATES,
  OUTPUT_EDGES,
  isJobEdge,
  isJobState,
  isOutputEdge,
  isOutputState,
  type JobState,
  type OutputState,
} from './states.js';
export {
  IllegalStateError,
  JournalError,
  JournalLockedError,
  isJournalWriteFailure,
  type JournalErrorCode,
  type LockHolder,
} from './errors.js';
export {
  hasExitStatus,
  normalizeServerUrl,
  type FinishDecision,
  type JobFields,
  type JobRecord,
  type JournalStats,
  type NewJob,
  type NewOutput,
  type OutputKey,
  type OutputRecord,
  type ServerRecord,
  type TransitionRecord,
} from './records.js';
export { SCHEMA_VERSION, APPLICATION_ID } from './schema.js';
export { lockPathFor } from './lock.js';
