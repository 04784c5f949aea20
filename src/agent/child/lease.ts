/**
 * A job's lease: a file in its directory holding a deadline on the boot clock, which the agent moves
 * forward whenever the server answers it and which the job's wrapper watches (see `wrapper.ts`). If
 * the agent stops renewing it — killed, SIGSTOPped, frozen in swap, paused with its VM, or cut off from
 * the server — the wrapper stops the job itself when the deadline passes, before the server's
 * lost-node recovery can give the job to another node. Fencing thus needs no live agent.
 *
 * The clock is `/proc/uptime` (CLOCK_BOOTTIME, `uptimeSeconds` in `proc.ts`): the wrapper can read it
 * with shell builtins, and neither NTP steps nor an operator's `date -s` move it.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import type { JobDir } from './job-dir.js';

/** Write the deadline (whole boot-clock seconds) atomically, so the wrapper never reads half of it. */
export function writeLease(dir: Pick<JobDir, 'leasePath'>, deadlineS: number): void {
  const tmp = `${dir.leasePath}.tmp`;
  writeFileSync(tmp, `${Math.floor(deadlineS)}\n`);
  renameSync(tmp, dir.leasePath);
}

/** Whether the wrapper stopped the job because its lease lapsed. */
export function fencedByWrapper(dir: Pick<JobDir, 'fencedPath'>): boolean {
  return existsSync(dir.fencedPath);
}
