/**
 * The journal's process start identity (`<boot id>:<start ticks>`, see
 * `journal/process-identity.ts`) for a child whose start time was read at spawn, and back: the
 * start ticks of a recorded identity when it belongs to this boot.
 */
import { processStartIdentity } from '../journal/process-identity.js';

function currentBootId(): string | null {
  const own = processStartIdentity(process.pid);
  return own === null ? null : own.slice(0, own.lastIndexOf(':'));
}

/** The identity to journal for a child started at `startTime` (clock ticks since boot). */
export function childStartIdentity(startTime: number): string | null {
  const boot = currentBootId();
  return boot === null ? null : `${boot}:${startTime}`;
}

/**
 * The start ticks of a journalled identity, or undefined when it is from another boot (the child
 * cannot still run) or unreadable.
 */
export function startTicksOf(identity: string | null): number | undefined {
  if (identity === null) return undefined;
  const cut = identity.lastIndexOf(':');
  const boot = identity.slice(0, cut);
  if (boot !== currentBootId()) return undefined;
  const ticks = Number(identity.slice(cut + 1));
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}
