/**
 * The journal in one process: opening and migrating, durability settings, reopening, attempts on
 * a re-used row, fields, outputs, node identity, settings, last contact, stats, the read-only
 * opener beside a live writer, the in-process double-open refusal and `close()`.
 */
import Database from 'better-sqlite3';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  APPLICATION_ID,
  JournalError,
  JournalLockedError,
  SCHEMA_VERSION,
  openJournal,
  openReadOnly,
  type Journal,
  type JournalOptions,
} from '../../../src/agent/journal/index.js';
import { tempDir } from '../../helpers/temp-dir.js';

const SERVER = 'http://127.0.0.1:8000';
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

let dir: string;
let path: string;
const open: { close(): void }[] = [];

beforeEach(async () => {
  dir = await tempDir('ufdl-journal-');
  path = join(dir, 'state', 'journal.db');
});

afterEach(() => {
  for (const j of open.splice(0)) j.close();
});

function journalAt(options: Partial<JournalOptions> = {}): Journal {
  const journal = openJournal({ path, serverUrl: SERVER, ...options });
  open.push(journal);
  return journal;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(JournalError);
    return (err as JournalError).code;
  }
  throw new Error('expected a JournalError');
}

/** Drive job `jobPk` through a whole successful attempt with one output. */
function runToDone(journal: Journal, jobPk: number): void {
  journal.beginAcquire({ jobPk, nodePk: 3, templatePk: 9, slot: 1, jobDir: `/work/${jobPk}` });
  journal.transition(jobPk, 'acquired');
  journal.transition(jobPk, 'preparing');
  journal.transition(jobPk, 'starting');
  journal.transition(jobPk, 'running', { pid: 1234, pidStart: 'boot:1' });
  journal.record(jobPk, { lastProgress: 1, exitCode: 0 });
  journal.registerOutput(jobPk, { name: 'log', type: 'BLOB', path: `/work/${jobPk}/log`, size: 1, sha256: SHA_A });
  journal.transition(jobPk, 'uploading');
  journal.markOutput(jobPk, { name: 'log', type: 'BLOB' }, 'uploading');
  journal.markOutput(jobPk, { name: 'log', type: 'BLOB' }, 'uploaded');
  journal.transition(jobPk, 'finishing', { finish: { error: null, requeue: false } });
  journal.transition(jobPk, 'done');
}

describe('opening and migrating', () => {
  it('should create the directory and the file, migrate it, and use WAL with synchronous=FULL', () => {
    const journal = journalAt();
    expect(journal.sqliteSettings()).toEqual({ journalMode: 'wal', synchronous: 2, schemaVersion: SCHEMA_VERSION });
    expect(journal.stats().schemaVersion).toBe(SCHEMA_VERSION);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    raw.close();
  });

  it('should migrate an empty (zero-byte) file', () => {
    journalAt().close();
    rmSync(path);
    writeFileSync(path, '');
    const journal = journalAt();
    expect(journal.sqliteSettings().schemaVersion).toBe(SCHEMA_VERSION);
    expect(journal.unfinished()).toEqual([]);
  });

  it('should refuse a file that is not SQLite', () => {
    journalAt().close();
    rmSync(path);
    writeFileSync(path, 'this is not a database, just some text that is long enough to have a header');
    expect(code(() => journalAt())).toBe('JOURNAL_SCHEMA');
  });

  it('should refuse a SQLite database of another application, even one at user_version 1', () => {
    journalAt().close();
    for (const setup of ['CREATE TABLE jobs (pk INTEGER)', 'CREATE TABLE jobs (pk INTEGER); PRAGMA user_version = 1']) {
      rmSync(path, { force: true });
      const other = new Database(path);
      other.exec(setup);
      other.close();
      expect(code(() => journalAt())).toBe('JOURNAL_SCHEMA');
      // and it was left as it was: not switched to WAL, not stamped as a journal
      const after = new Database(path, { readonly: true });
      expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(after.pragma('application_id', { simple: true })).toBe(0);
      after.close();
      expect(code(() => openReadOnly(path))).toBe('JOURNAL_SCHEMA');
    }
  });

  it('should refuse a journal written by a newer version', () => {
    journalAt().close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const err = (() => {
      try {
        journalAt();
      } catch (e) {
        return e as JournalError;
      }
      throw new Error('expected refusal');
    })();
    expect(err.code).toBe('JOURNAL_SCHEMA');
    expect(err.message).toContain('newer');
    expect(code(() => openReadOnly(path))).toBe('JOURNAL_SCHEMA');
  });

  it('should open a schema-1 journal (fixture) with every value intact', () => {
    journalAt().close();
    rmSync(path);
    const raw = new Database(path);
    raw.exec(readFileSync(join(import.meta.dirname, '../../fixtures/journal/v1.sql'), 'utf8'));
    raw.close();
    const journal = journalAt({ serverUrl: 'http://ufdl.example:8000/' });
    expect(journal.sqliteSettings().schemaVersion).toBe(SCHEMA_VERSION);
    expect(journal.server()).toMatchObject({ nodePk: 4, ip: '10.0.0.7', index: 0, lastContactAt: '2026-01-02T03:04:08.000Z' });
    expect(journal.server()?.hardware).toEqual({ cpu_mem: 64000, gpus: [{ name: 'RTX 3090', memory: 24576 }] });
    expect(journal.getSetting('capabilities')).toBe('{"wait":true}');
    expect(journal.unfinished().map((j) => j.jobPk)).toEqual([11]);
    expect(journal.get(11)).toMatchObject({
      state: 'uploading',
      pid: 4242,
      pidStart: 'boot-1:123456',
      exitCode: 0,
      lastProgress: 0.75,
      attempts: 1,
      runs: 1,
      jobDir: '/var/lib/ufdl-agent/work/11',
    });
    expect(journal.pendingOutputs(11).map((o) => [o.name, o.state])).toEqual([['log', 'pending']]);
    expect(journal.history(11).map((t) => t.to)).toEqual(['acquiring', 'acquired', 'preparing', 'starting', 'running', 'uploading']);
    // and it carries on from there
    journal.markOutput(11, { name: 'log', type: 'Compressed<JSON, 8>' }, 'uploading');
    journal.transition(11, 'finishing', { finish: { error: null, requeue: false } });
    expect(journal.get(11)?.state).toBe('finishing');
  });
  it('should migrate a schema-2 journal (fixture), reading each journalled finish as recovery read it then', () => {
    journalAt().close();
    rmSync(path);
    const raw = new Database(path);
    raw.exec(readFileSync(join(import.meta.dirname, '../../fixtures/journal/v2.sql'), 'utf8'));
    raw.close();
    const journal = journalAt({ serverUrl: 'http://ufdl.example:8000/' });
    expect(journal.sqliteSettings().schemaVersion).toBe(SCHEMA_VERSION);
    expect(journal.liveLog(11)).toEqual({ sent: 4096, maxBytes: 64 * 1024 ** 2 });
    // Schema 4 rebuilt the outputs table (size and sha256 may be unknown): every row kept, in order.
    expect(journal.outputs(11).map((o) => [o.name, o.state, o.size, o.sha256])).toEqual([
      ['model.zip', 'uploaded', 1024, 'b'.repeat(64)],
      ['log', 'pending', 99, 'c'.repeat(64)],
    ]);
    expect(journal.get(11)?.finish).toBeNull();
    // Schema 2 kept only the error's text; these finishes send the job back to the queue…
    expect(journal.get(21)?.finish).toEqual({ error: 'The node is shutting down; the job will run again elsewhere.', requeue: true });
    expect(journal.get(22)?.finish).toEqual({
      error: 'The node lost contact with the server and stopped the job; it will run again elsewhere.',
      requeue: true,
    });
    expect(journal.get(23)?.finish).toEqual({ error: 'Node restarted during job execution.', requeue: true });
    // …and these do not: a job that crashed the node too often, an ordinary failure, a success.
    expect(journal.get(24)?.finish).toEqual({
      error: 'Node restarted during job execution. Not retried: the job was interrupted 3 times.',
      requeue: false,
    });
    expect(journal.get(25)?.finish).toEqual({ error: 'The command exited with status 3', requeue: false });
    expect(journal.get(26)?.finish).toEqual({ error: null, requeue: false });
    expect(journal.unfinished().map((j) => [j.jobPk, j.state])).toEqual([
      [11, 'uploading'],
      [21, 'finishing'],
      [22, 'finishing'],
      [23, 'releasing'],
      [24, 'finishing'],
      [25, 'finishing'],
      [26, 'finishing'],
    ]);
  });
});

describe('durability across reopen', () => {
  it('should keep jobs, fields, outputs, history, node identity, settings and last contact', () => {
    const first = journalAt();
    first.saveNode({ nodePk: 3, ip: '10.1.1.1', index: 2, hardware: { gpus: 2 } });
    first.setSetting('token-expiry', '2030-01-01');
    first.noteContact(new Date('2026-05-05T05:05:05.000Z'));
    runToDone(first, 5);
    first.beginAcquire({ jobPk: 6, nodePk: 3 });
    first.transition(6, 'acquired');
    first.transition(6, 'preparing', { jobDir: '/work/6', lastError: 'download slow' });
    first.record(6, { finish: { error: 'input missing', requeue: true } });
    const snapshot = { five: first.get(5), six: first.get(6), out: first.outputs(5), hist: first.history(5), server: first.server() };
    first.close();
    const again = journalAt();
    expect({ five: again.get(5), six: again.get(6), out: again.outputs(5), hist: again.history(5), server: again.server() }).toEqual(
      snapshot,
    );
    expect(again.getSetting('token-expiry')).toBe('2030-01-01');
    expect(again.lastContact()?.toISOString()).toBe('2026-05-05T05:05:05.000Z');
    expect(again.unfinished().map((j) => [j.jobPk, j.state])).toEqual([[6, 'preparing']]);
    expect(again.get(6)?.finish).toEqual({ error: 'input missing', requeue: true });
  });

  it('should make close() idempotent, refuse calls after it, and release the lock', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    journal.close();
    journal.close();
    expect(journal.closed).toBe(true);
    expect(code(() => journal.get(1))).toBe('JOURNAL_CLOSED');
    expect(code(() => journal.transition(1, 'acquired'))).toBe('JOURNAL_CLOSED');
    expect(journalAt().get(1)?.state).toBe('acquiring');
  });
});

describe('one agent per journal (in this process)', () => {
  it('should refuse a second open of the same journal, naming this process', () => {
    journalAt();
    let err: unknown;
    try {
      openJournal({ path: join(dir, 'state', '.', 'journal.db'), serverUrl: SERVER });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JournalLockedError);
    expect((err as JournalLockedError).holder?.pid).toBe(process.pid);
    expect((err as Error).message).toContain(`pid ${process.pid}`);
  });

  it('should refuse it through a symlinked path too (the OS lock, not just the path)', () => {
    journalAt();
    symlinkSync(join(dir, 'state'), join(dir, 'link'));
    let err: unknown;
    try {
      openJournal({ path: join(dir, 'link', 'journal.db'), serverUrl: SERVER }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JournalLockedError);
  });
});

describe('attempts on a re-used row', () => {
  it('should re-use a done row as a new attempt, clearing that attempt and keeping the counters', () => {
    const journal = journalAt();
    runToDone(journal, 7);
    journal.noteRestart(7);
    const first = journal.get(7)!;
    expect(first).toMatchObject({ attempts: 1, runs: 1, restarts: 1, state: 'done' });

    const second = journal.beginAcquire({ jobPk: 7, nodePk: 4, templatePk: 9 });
    expect(second).toMatchObject({
      state: 'acquiring',
      attempts: 2,
      runs: 1,
      restarts: 1,
      nodePk: 4,
      pid: null,
      pidStart: null,
      exitCode: null,
      exitSignal: null,
      finish: null,
      lastProgress: null,
      lastError: null,
      slot: null,
      jobDir: null,
      createdAt: first.createdAt,
    });
    expect(Object.keys(second.stateTimes)).toEqual(['acquiring']);
    expect(journal.outputs(7)).toEqual([]);
    journal.transition(7, 'acquired');
    journal.transition(7, 'preparing');
    journal.transition(7, 'starting');
    expect(journal.transition(7, 'running').runs).toBe(2);
    const history = journal.history(7);
    expect(history.filter((t) => t.attempt === 1).map((t) => t.to).at(-1)).toBe('done');
    expect(history.filter((t) => t.attempt === 2).map((t) => [t.from, t.to])).toEqual([
      [null, 'acquiring'],
      ['acquiring', 'acquired'],
      ['acquired', 'preparing'],
      ['preparing', 'starting'],
      ['starting', 'running'],
    ]);
  });

  it('should keep one row per (server, job): another server URL has its own row', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 8, nodePk: 1 });
    journal.close();
    const other = journalAt({ serverUrl: 'http://other:9000' });
    expect(other.get(8)).toBeUndefined();
    other.beginAcquire({ jobPk: 8, nodePk: 2 });
    expect(other.unfinished().map((j) => [j.serverUrl, j.jobPk])).toEqual([['http://other:9000', 8]]);
    expect(other.stats().jobs.unfinishedElsewhere).toBe(1);
  });

  it('should normalize the server URL (trailing slash, host case)', () => {
    const journal = journalAt({ serverUrl: 'HTTP://LocalHost:8000/' });
    expect(journal.serverUrl).toBe('http://localhost:8000');
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    journal.close();
    expect(journalAt({ serverUrl: 'http://localhost:8000' }).get(1)?.state).toBe('acquiring');
  });
});

describe('fields', () => {
  it('should set fields without a state change, and leave absent keys alone', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1, slot: 0 });
    const record = journal.record(1, { lastProgress: 0.25, lastError: 'slow' });
    expect(record).toMatchObject({ state: 'acquiring', lastProgress: 0.25, lastError: 'slow', slot: 0 });
    expect(journal.record(1, { lastError: null })).toMatchObject({ lastError: null, lastProgress: 0.25 });
    expect(journal.record(1, { finish: { error: null, requeue: false } }).finish).toEqual({ error: null, requeue: false });
    expect(journal.record(1, { finish: { error: 'exit code 3', requeue: false } }).finish).toEqual({ error: 'exit code 3', requeue: false });
    expect(journal.record(1, { finish: { error: 'shutting down', requeue: true } }).finish).toEqual({ error: 'shutting down', requeue: true });
    expect(journal.record(1, { finish: null }).finish).toBeNull();
    expect(journal.record(1, { exitSignal: 'SIGKILL' }).exitSignal).toBe('SIGKILL');
    expect(journal.noteRestart(1).restarts).toBe(1);
    expect(journal.history(1)).toHaveLength(1);
  });

  it('should refuse bad values, naming the field, and unknown jobs', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    expect(code(() => journal.record(1, { lastProgress: 1.5 }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.record(1, { pid: -3 }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.record(1, { slot: 1.5 }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.record(1, { exitCode: Number.NaN }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.record(1, { finish: { error: 'x' } as never }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.beginAcquire({ jobPk: 0, nodePk: 1 }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.transition(99, 'acquired'))).toBe('JOURNAL_UNKNOWN_JOB');
    expect(code(() => journal.record(99, {}))).toBe('JOURNAL_UNKNOWN_JOB');
    expect(code(() => journal.abandon(99, 'x'))).toBe('JOURNAL_UNKNOWN_JOB');
    expect(() => journal.record(1, { pid: -3 })).toThrow(/pid/);
  });

  it('should list unfinished jobs by pk and recent jobs newest first, and prune old done ones', () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const journal = journalAt({ now: () => new Date((t += 1000)) });
    for (const pk of [30, 10, 20]) journal.beginAcquire({ jobPk: pk, nodePk: 1 });
    runToDone(journal, 40);
    expect(journal.unfinished().map((j) => j.jobPk)).toEqual([10, 20, 30]);
    expect(journal.recent(2).map((j) => j.jobPk)).toEqual([40, 20]);
    expect(journal.pruneDone(new Date(t - 500))).toBe(0);
    expect(journal.pruneDone(new Date(t + 1))).toBe(1);
    expect(journal.get(40)).toBeUndefined();
    expect(journal.outputs(40)).toEqual([]);
    expect(journal.history(40)).toEqual([]);
    expect(journal.unfinished()).toHaveLength(3);
  });
});

describe('outputs', () => {
  const model = { name: 'model.zip', type: 'BLOB', path: '/w/model.zip', size: 10, sha256: SHA_A };
  const key = { name: 'model.zip', type: 'BLOB' };

  it('should register idempotently and track each upload state with attempts and errors', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    const first = journal.registerOutput(1, model);
    expect(first).toMatchObject({ state: 'pending', attempts: 0, lastError: null, size: 10, sha256: SHA_A });
    expect(journal.registerOutput(1, { ...model, sha256: SHA_A.toUpperCase() })).toEqual(first);
    journal.registerOutput(1, { name: 'log', type: 'Compressed<JSON, 8>', path: '/w/log', size: 0, sha256: SHA_B });
    expect(journal.outputs(1).map((o) => o.name)).toEqual(['model.zip', 'log']);

    journal.markOutput(1, key, 'uploading');
    expect(journal.markOutput(1, key, 'failed', { error: 'ECONNRESET' })).toMatchObject({ state: 'failed', attempts: 1, lastError: 'ECONNRESET' });
    expect(journal.pendingOutputs(1).map((o) => [o.name, o.state])).toEqual([
      ['model.zip', 'failed'],
      ['log', 'pending'],
    ]);
    journal.markOutput(1, key, 'uploading');
    expect(journal.markOutput(1, key, 'uploading').attempts).toBe(3);
    expect(journal.markOutput(1, key, 'uploaded')).toMatchObject({ state: 'uploaded', attempts: 3, lastError: null });
    expect(journal.pendingOutputs(1).map((o) => o.name)).toEqual(['log']);
    // registering the same content again after the upload is still a no-op
    expect(journal.registerOutput(1, model).state).toBe('uploaded');
  });

  it('should replace content not yet uploaded, and refuse different content once uploading', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    journal.registerOutput(1, model);
    journal.registerOutput(1, { name: 'log', type: 'BLOB', path: '/w/log', size: 1, sha256: SHA_A });
    expect(journal.registerOutput(1, { ...model, size: 11, sha256: SHA_B })).toMatchObject({ size: 11, sha256: SHA_B, state: 'pending' });
    expect(journal.outputs(1).map((o) => o.name)).toEqual(['model.zip', 'log']);
    journal.markOutput(1, key, 'uploading');
    expect(code(() => journal.registerOutput(1, model))).toBe('JOURNAL_OUTPUT_CONFLICT');
    journal.markOutput(1, key, 'failed');
    expect(journal.registerOutput(1, model)).toMatchObject({ sha256: SHA_A, state: 'pending', attempts: 1 });
  });

  it('should register a file without its digest, and record the size and SHA-256 of what was sent with uploaded', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    const file = { name: 'model.zip', type: 'BLOB', path: '/w/model.zip' };
    const first = journal.registerOutput(1, file);
    expect(first).toMatchObject({ state: 'pending', size: null, sha256: null });
    expect(journal.registerOutput(1, file)).toEqual(first);
    journal.markOutput(1, key, 'uploading');
    // In flight, nothing known of the bytes: the same file again is still the same output.
    expect(journal.registerOutput(1, file).state).toBe('uploading');
    expect(code(() => journal.registerOutput(1, { ...file, path: '/w/other' }))).toBe('JOURNAL_OUTPUT_CONFLICT');
    expect(code(() => journal.markOutput(1, key, 'uploaded'))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.markOutput(1, key, 'uploaded', { digest: { size: 10, sha256: 'xyz' } }))).toBe('JOURNAL_BAD_VALUE');
    expect(journal.outputs(1)[0]).toMatchObject({ state: 'uploading', size: null, sha256: null });
    expect(journal.markOutput(1, key, 'uploaded', { digest: { size: 10, sha256: SHA_A.toUpperCase() } })).toMatchObject({ state: 'uploaded', size: 10, sha256: SHA_A });
    journal.close();
    expect(journalAt().outputs(1)[0]).toMatchObject({ state: 'uploaded', size: 10, sha256: SHA_A, attempts: 1 });
  });

  it('should refuse unknown outputs, unknown jobs and malformed outputs', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    expect(code(() => journal.markOutput(1, key, 'uploading'))).toBe('JOURNAL_UNKNOWN_OUTPUT');
    expect(code(() => journal.registerOutput(2, model))).toBe('JOURNAL_UNKNOWN_JOB');
    expect(code(() => journal.registerOutput(1, { ...model, sha256: 'xyz' }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.registerOutput(1, { ...model, size: -1 }))).toBe('JOURNAL_BAD_VALUE');
    expect(code(() => journal.registerOutput(1, { ...model, name: '' }))).toBe('JOURNAL_BAD_VALUE');
  });
});

describe('node identity, settings and contact', () => {
  it('should save, re-save and forget the node, keeping its identity and hardware', () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const journal = journalAt({ now: () => new Date((t += 1000)) });
    expect(journal.server()).toBeUndefined();
    const saved = journal.saveNode({ nodePk: 3, ip: '10.0.0.1', index: 0, hardware: { cpu_mem: 1 } });
    expect(saved).toMatchObject({ serverUrl: SERVER, nodePk: 3, ip: '10.0.0.1', index: 0, hardware: { cpu_mem: 1 } });
    const registeredAt = saved.registeredAt;
    expect(journal.saveNode({ nodePk: 3, ip: '10.0.0.2', index: 0 })).toMatchObject({ ip: '10.0.0.2', registeredAt, hardware: { cpu_mem: 1 } });
    expect(journal.saveHardware({ cpu_mem: 2 }).hardware).toEqual({ cpu_mem: 2 });
    journal.forgetNode();
    expect(journal.server()).toMatchObject({ nodePk: null, ip: '10.0.0.2', hardware: { cpu_mem: 2 } });
    expect(journal.saveNode({ nodePk: 8, ip: '10.0.0.2', index: 0 }).registeredAt).not.toBe(registeredAt);
    expect(journal.stats().nodePk).toBe(8);
  });

  it('should store and delete settings', () => {
    const journal = journalAt();
    expect(journal.getSetting('a')).toBeUndefined();
    journal.setSetting('a', '1');
    journal.setSetting('a', '2');
    expect(journal.getSetting('a')).toBe('2');
    journal.setSetting('a', null);
    expect(journal.getSetting('a')).toBeUndefined();
  });

  it("should fix the agent's identity at first use and keep it across reopening, whatever is offered later", () => {
    const first = journalAt();
    expect(first.identity('host-a:/var/lib/ufdl-agent/work')).toBe('host-a:/var/lib/ufdl-agent/work');
    expect(first.identity('host-b:/var/lib/ufdl-agent/work')).toBe('host-a:/var/lib/ufdl-agent/work');
    first.close();
    open.splice(open.indexOf(first), 1);
    // A re-created container: another hostname, the same journal.
    expect(journalAt().identity('host-b:/var/lib/ufdl-agent/work')).toBe('host-a:/var/lib/ufdl-agent/work');
  });

  it('should keep the last contact current in memory and write it at most once per interval', () => {
    const journal = journalAt({ contactWriteIntervalMs: 10_000 });
    const reader = openReadOnly(path, { serverUrl: SERVER });
    open.push(reader);
    const t0 = Date.parse('2026-02-02T00:00:00Z');
    journal.noteContact(new Date(t0));
    expect(reader.server()?.lastContactAt).toBe(new Date(t0).toISOString());
    journal.noteContact(new Date(t0 + 5_000));
    expect(journal.lastContact()?.getTime()).toBe(t0 + 5_000);
    expect(journal.stats().lastContactAt).toBe(new Date(t0 + 5_000).toISOString());
    expect(reader.server()?.lastContactAt).toBe(new Date(t0).toISOString());
    journal.noteContact(new Date(t0 + 10_000));
    expect(reader.server()?.lastContactAt).toBe(new Date(t0 + 10_000).toISOString());
    journal.noteContact(new Date(t0 + 12_000));
    journal.close();
    expect(reader.server()?.lastContactAt).toBe(new Date(t0 + 12_000).toISOString());
  });
});

describe('stats and the read-only opener', () => {
  it('should count jobs by state and outputs of unfinished jobs, with node, contact and holder', () => {
    const journal = journalAt();
    journal.saveNode({ nodePk: 3, ip: '10.0.0.1', index: 0 });
    journal.noteContact(new Date('2026-03-03T03:03:03.000Z'));
    runToDone(journal, 1);
    journal.beginAcquire({ jobPk: 2, nodePk: 3 });
    journal.beginAcquire({ jobPk: 3, nodePk: 3 });
    for (const s of ['acquired', 'preparing', 'starting', 'running'] as const) journal.transition(3, s);
    journal.registerOutput(3, { name: 'a', type: 'BLOB', path: '/a', size: 1, sha256: SHA_A });
    journal.registerOutput(3, { name: 'b', type: 'BLOB', path: '/b', size: 1, sha256: SHA_B });
    journal.markOutput(3, { name: 'b', type: 'BLOB' }, 'uploading');
    const stats = journal.stats();
    expect(stats).toMatchObject({
      path,
      serverUrl: SERVER,
      nodePk: 3,
      lastContactAt: '2026-03-03T03:03:03.000Z',
      jobs: { total: 3, unfinished: 2, unfinishedElsewhere: 0 },
      outputs: { pending: 1, uploading: 1, uploaded: 0, failed: 0 },
      holder: { pid: process.pid, alive: true },
    });
    expect(stats.jobs.byState).toEqual({
      acquiring: 1,
      acquired: 0,
      preparing: 0,
      starting: 0,
      running: 1,
      uploading: 0,
      finishing: 0,
      releasing: 0,
      done: 1,
    });
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
  });

  it('should let a reader see a live writer, then the closed journal', () => {
    const journal = journalAt();
    journal.beginAcquire({ jobPk: 1, nodePk: 1 });
    const reader = openReadOnly(path);
    open.push(reader);
    expect(reader.get(1)?.state).toBe('acquiring');
    journal.transition(1, 'acquired');
    expect(reader.get(1)?.state).toBe('acquired');
    expect(reader.unfinished().map((j) => j.jobPk)).toEqual([1]);
    expect(reader.stats()).toMatchObject({ serverUrl: null, holder: { pid: process.pid, alive: true }, jobs: { unfinished: 1 } });
    expect(reader.sqliteSettings().journalMode).toBe('wal');
    journal.close();
    expect(reader.stats().holder).toBeNull();
    expect(reader.get(1)?.state).toBe('acquired');
    reader.close();
    reader.close();
    const later = openReadOnly(path, { serverUrl: `${SERVER}/` });
    open.push(later);
    expect(later.unfinished().map((j) => j.jobPk)).toEqual([1]);
    expect(later.server()).toBeUndefined();
  });

  it('should say clearly when there is no journal, or the file is not one', () => {
    expect(code(() => openReadOnly(join(dir, 'missing.db')))).toBe('JOURNAL_NOT_FOUND');
    writeFileSync(join(dir, 'empty.db'), '');
    expect(code(() => openReadOnly(join(dir, 'empty.db')))).toBe('JOURNAL_SCHEMA');
  });
});
