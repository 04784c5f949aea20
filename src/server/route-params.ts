/**
 * URL parameter parsing shared by the route plugins of users, nodes, hardware and templates.
 *
 * The reference matches primary keys with `[0-9]+` in its URL patterns, so anything else never
 * reaches a view and is a 404. We answer the same 404, but as JSON `{"detail": "Not found."}`.
 */
import { notFound } from '../protocol/error-constructors.js';

/** The reference's object-lookup 404 body. */
/**
 * A primary key from the URL. Anything but plain digits (`-1`, `1e3`) or a number beyond what
 * SQLite stores exactly (`99999999999999999999`) cannot name a row, so it is a 404 like an unknown pk.
 */
export function parsePk(raw: string | undefined): number {
  if (raw === undefined || !/^[0-9]{1,16}$/.test(raw)) throw notFound();
  const pk = Number(raw);
  if (!Number.isSafeInteger(pk)) throw notFound();
  return pk;
}
