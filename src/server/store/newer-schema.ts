/**
 * The database was written by a newer ufdl-agent than this one: its schema has changes this version
 * does not know, so it refuses to open it rather than misread it. Not a bug, and not something a
 * restart fixes: `serve` exits with the configuration status and says what to do.
 */
export class NewerSchemaError extends Error {
  override name = 'NewerSchemaError';

  constructor(found: number, known: number) {
    super(`the database was written by a newer ufdl-agent (schema ${found}, this version knows ${known}); refusing to open it`);
  }
}
