/**
 * What ties replicas on one PostgreSQL database together beyond the data: their hub events relayed
 * over LISTEN/NOTIFY (a job created on one wakes a node waiting on another; a watcher on one sees the
 * transitions made on another), and one leader at a time for the lost-node sweep.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { NotifyHub } from './notify-hub.js';
import { HubRelay } from './store/postgres/hub-relay.js';
import { AdvisoryLeadership } from './store/postgres/leadership.js';

/** The advisory-lock key of the sweep's leadership ('ufdl' 'swep' as two int4s). */
export const SWEEP_LOCK: readonly [number, number] = [0x7566646c, 0x73776570];

/** How often a follower tries to become the sweep's leader (a dead leader is replaced within this). */
const LEADERSHIP_CHECK_MS = 5_000;

export interface Replication {
  /** Whether this replica runs the lost-node sweep now. */
  leadsSweep: () => boolean;
  close(): Promise<void>;
}

export async function startReplication(pool: pg.Pool, hub: NotifyHub, log: Logger): Promise<Replication> {
  const relay = await HubRelay.start(pool, hub, log);
  const leadership = await AdvisoryLeadership.start(pool, { key: SWEEP_LOCK, checkMs: LEADERSHIP_CHECK_MS, log, what: 'the lost-node sweep' });
  return {
    leadsSweep: () => leadership.isLeader(),
    async close() {
      await leadership.close();
      await relay.close();
    },
  };
}
