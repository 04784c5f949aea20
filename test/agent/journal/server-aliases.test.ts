/**
 * The journal names a server by its first address; entries journalled under another address of the
 * same server (a reordered list, a single address that became one of several) are taken over at open,
 * so that recovery finds them. Entries of other servers stay where they are.
 */
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openJournal, type Journal } from '../../../src/agent/journal/index.js';
import { tempDir } from '../../helpers/temp-dir.js';

const A = 'http://replica-a:8000';
const B = 'http://replica-b:8000';
const OTHER = 'http://another-server:8000';
const SHA = 'c'.repeat(64);

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await tempDir('ufdl-journal-aliases-');
  path = join(dir, 'journal.db');
});

/** Job `jobPk` left running with an output registered and a live log under way. */
function leaveRunning(journal: Journal, jobPk: number): void {
  journal.beginAcquire({ jobPk, nodePk: 3, templatePk: 9, slot: 0, jobDir: `/work/${jobPk}` });
  for (const state of ['acquired', 'preparing', 'starting'] as const) journal.transition(jobPk, state);
  journal.transition(jobPk, 'running', { pid: 1234, pidStart: 'boot:1' });
  journal.registerOutput(jobPk, { name: 'model', type: 'BLOB', path: `/work/${jobPk}/model`, size: 1, sha256: SHA });
  journal.recordLiveLog(jobPk, { sent: 42, maxBytes: 1 << 20 });
}

describe('journal entries of another address of the same server', () => {
  it('are taken over under the first address at open, with their outputs, live log, history and node', () => {
    const before = openJournal({ path, serverUrl: A });
    leaveRunning(before, 7);
    before.saveNode({ nodePk: 3, ip: '10.0.0.5', index: 0 });
    before.close();
    const other = openJournal({ path, serverUrl: OTHER });
    leaveRunning(other, 7);
    other.close();

    // The operator put replica B first.
    const after = openJournal({ path, serverUrl: B, otherServerUrls: [`${A}/`] });
    try {
      expect(after.unfinished().map((j) => [j.jobPk, j.state])).toEqual([[7, 'running']]);
      expect(after.outputs(7).map((o) => o.name)).toEqual(['model']);
      expect(after.liveLog(7)).toEqual({ sent: 42, maxBytes: 1 << 20 });
      expect(after.history(7).map((t) => t.to)).toEqual(['acquiring', 'acquired', 'preparing', 'starting', 'running']);
      expect(after.server()?.nodePk).toBe(3);
      expect(after.servers().map((s) => s.serverUrl)).toEqual([B]);
    } finally {
      after.close();
    }
    // Another server's entries were left alone.
    const again = openJournal({ path, serverUrl: OTHER });
    try {
      expect(again.unfinished().map((j) => j.jobPk)).toEqual([7]);
    } finally {
      again.close();
    }
  });

  it('keeps the entry changed last when both addresses journalled the same job', () => {
    const first = openJournal({ path, serverUrl: B, now: () => new Date('2026-01-01T00:00:00Z') });
    leaveRunning(first, 7);
    first.transition(7, 'uploading');
    first.close();
    const second = openJournal({ path, serverUrl: A, now: () => new Date('2026-01-02T00:00:00Z') });
    leaveRunning(second, 7);
    second.close();

    const after = openJournal({ path, serverUrl: B, otherServerUrls: [A] });
    try {
      expect(after.get(7)?.state).toBe('running');
      expect(after.unfinished()).toHaveLength(1);
    } finally {
      after.close();
    }
  });
});
