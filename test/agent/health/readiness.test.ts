/**
 * Readiness (issue 4 "Deployment"): each reason the agent is not ready, as a short sentence, and the
 * checks behind the ones it measures itself (journal writable, free disk). The answers of `/readyz`
 * as the server goes away and comes back, and as the slots fill, are in `readiness-over-time.test.ts`.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { journalProblem, notReadyReasons, Readiness, type ReadinessFacts } from '../../../src/agent/health/readiness.js';
import { ClientError } from '../../../src/client/errors.js';
import { tempDir } from '../../helpers/temp-dir.js';

const READY: ReadinessFacts = {
  state: 'running',
  serverUrl: 'http://server.example:8000',
  authProblem: null,
  pollProblem: null,
  reachable: true,
  silentMs: 0,
  fenced: false,
  slots: { total: 2, running: 1 },
  journalProblem: null,
  lowDisk: null,
};

const quietLog = { info: () => {}, error: () => {} };

describe('notReadyReasons()', () => {
  it('is empty for a running agent with a free slot', () => {
    expect(notReadyReasons(READY)).toEqual([]);
    expect(notReadyReasons({ ...READY, slots: undefined })).toEqual([]);
  });

  it('names each reason in a short sentence', () => {
    const reasons = (f: Partial<ReadinessFacts>) => notReadyReasons({ ...READY, ...f });
    expect(reasons({ state: 'starting' })).toEqual(['the agent is starting: logging in, registering, recovering the journal']);
    expect(reasons({ state: 'draining' })).toEqual(['the agent is draining: it takes no new jobs']);
    expect(reasons({ reachable: false, silentMs: 12_400 })).toEqual(['the server http://server.example:8000 cannot be reached (no answer for 12 s)']);
    expect(reasons({ authProblem: "the server refuses the credentials of user 'robot'" })).toEqual(["the server refuses the credentials of user 'robot'"]);
    expect(reasons({ fenced: true })).toEqual(['self-fenced: waiting for the server to answer']);
    expect(reasons({ slots: { total: 2, running: 2 } })).toEqual(['no free slot: all 2 slot(s) run a job']);
    expect(reasons({ slots: { total: 2, running: 2, waitingForNode: 1 } })).toEqual([
      "no free slot: 1 slot(s) run a job, 1 wait(s) for its node's job in another slot to end",
    ]);
    expect(reasons({ journalProblem: 'the journal is closed' })).toEqual(['the journal is closed']);
    expect(reasons({ lowDisk: 'low disk space: 1 bytes free in /w, below min_free_disk (2)' })).toEqual(['low disk space: 1 bytes free in /w, below min_free_disk (2)']);
  });

  it('lists every reason that holds', () => {
    expect(notReadyReasons({ ...READY, state: 'draining', reachable: false, slots: { total: 1, running: 1 } })).toHaveLength(3);
  });
});

describe('journalProblem()', () => {
  it('is null before the journal is open and for a writable journal', async () => {
    const dir = await tempDir('ufdl-readiness-');
    const path = join(dir, 'journal.sqlite3');
    await writeFile(path, '');
    expect(journalProblem(undefined)).toBeNull();
    expect(journalProblem({ path, closed: false })).toBeNull();
  });

  it('names a closed journal and one whose file cannot be written', () => {
    expect(journalProblem({ path: '/tmp/j.sqlite3', closed: true })).toBe('the journal is closed');
    expect(journalProblem({ path: '/nonexistent-dir/journal.sqlite3', closed: false })).toBe(
      'the journal is not writable: /nonexistent-dir/journal.sqlite3 (ENOENT)',
    );
  });
});

describe('Readiness', () => {
  function readiness(minFreeDiskBytes: number, workDir = tmpdir()) {
    const changes: boolean[] = [];
    const r = new Readiness({
      options: { workDir, minFreeDiskBytes, username: 'robot' },
      log: quietLog,
      facts: () => ({ ...READY }),
      onChange: (ready) => changes.push(ready),
    });
    return { r, changes };
  }

  it('measures the free disk of the work directory at each check', () => {
    const { r } = readiness(Number.MAX_SAFE_INTEGER);
    expect(r.reasons()).toEqual([expect.stringMatching(/^low disk space: \d+ bytes free in .*, below min_free_disk \(\d+\)$/)]);
    expect(r.checkDisk()).toBe(false);
    expect(readiness(0).r.reasons()).toEqual([]);
  });

  it('is not ready while polls are refused for the credentials, and tells each change once', () => {
    const refused = () => new ClientError({ kind: 'auth', method: 'POST', path: '/v1/jobs/list', detail: 'refused', status: 401 });
    const { r, changes } = readiness(0);
    r.update();
    r.pollFailed(refused());
    expect(r.reasons()).toEqual(["the server refuses the credentials of user 'robot'"]);
    r.pollFailed(refused());
    r.pollAnswered();
    expect(r.reasons()).toEqual([]);
    expect(changes).toEqual([true, false, true]);
  });
});
