/**
 * Lost-node recovery (DESIGN §3): jobs held by a node unseen for `lostAfterSeconds` are aborted so
 * another node can run them. Implemented in the jobs work package.
 */
import type { ServerContext } from './context.js';

export function startSweeper(_ctx: ServerContext): () => void {
  return () => {};
}
