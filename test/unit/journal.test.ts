import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appendJournal,
  countJournal,
  journalDir,
  journalKey,
  JournalReadError,
  readJournal,
  removeJournal,
} from '../../src/host/journal.js';

const key = (backupId: string) => ({ backupId, host: '10.0.0.1', port: 20000, shardValue: 0 });

test('entries are durable files read back in write order; removal is by id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-journal-'));
  const a = appendJournal(dir, { key: key('a'), observedPid: 10, status: 'success' });
  const b = appendJournal(dir, { key: key('b'), observedPid: 11, status: 'failed: exit code 2' });
  const read = readJournal(dir);
  assert.deepEqual(
    read.entries.map((e) => [e.id, e.status]),
    [
      [a.id, 'success'],
      [b.id, 'failed: exit code 2'],
    ],
  );
  assert.equal(journalKey(read.entries[0]!.key), journalKey(key('a')));
  removeJournal(dir, a.id);
  assert.deepEqual(
    readJournal(dir).entries.map((e) => e.id),
    [b.id],
  );
  assert.ok(!readdirSync(journalDir(dir)).some((f) => f.endsWith('.tmp')), 'no temporary files left');
});

test('an unreadable entry is moved aside as .bad, not lost and not fatal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-journal-'));
  appendJournal(dir, { key: key('ok'), observedPid: 1, status: 'success' });
  writeFileSync(join(journalDir(dir), '000000000000001-1-000000.json'), '{"truncated');
  const read = readJournal(dir);
  assert.deepEqual(
    read.entries.map((e) => e.key.backupId),
    ['ok'],
  );
  assert.deepEqual(read.bad, ['000000000000001-1-000000.json']);
  assert.ok(readdirSync(journalDir(dir)).includes('000000000000001-1-000000.json.bad'));
});

test('a missing journal directory is an empty journal', () => {
  assert.deepEqual(readJournal(join(tmpdir(), 'sb-does-not-exist-xyz')), { entries: [], bad: [] });
});

test('a journal that exists but cannot be read is an error, never an empty journal', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'sb-journal-'));
  writeFileSync(join(stateDir, 'journal'), 'not a directory');
  assert.throws(
    () => readJournal(stateDir),
    (e: unknown) => e instanceof JournalReadError && /cannot read the journal/.test(e.message),
  );
  assert.throws(() => countJournal(stateDir), JournalReadError);
  // missing: simply empty
  assert.deepEqual(readJournal(join(stateDir, 'nope')), { entries: [], bad: [] });
});
