// The one atomic file write and directory fsync: whole files only, nothing left behind, real
// errors not swallowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../src/fs.js';

test('writeFileAtomic: replaces the file whole, with its mode, creating the directory; no temporary file left', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sb-fs-')), 'a', 'b');
  const file = join(dir, 'x.json');
  writeFileAtomic(file, 'one', { mode: 0o600, durable: true, dirMode: 0o700 });
  writeFileAtomic(file, 'two', { mode: 0o600, durable: false });
  assert.equal(readFileSync(file, 'utf8'), 'two');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(dir), ['x.json']);
});

test('writeFileAtomic: a rename that fails leaves the target as it was and removes the temporary file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-fs-'));
  mkdirSync(join(dir, 'taken'));
  assert.throws(() => writeFileAtomic(join(dir, 'taken'), 'x', { mode: 0o644, durable: true }), /EISDIR|ENOTDIR|EEXIST|EPERM/);
  assert.deepEqual(readdirSync(dir), ['taken']);
  assert.ok(statSync(join(dir, 'taken')).isDirectory());
});

test('fsyncDir: a directory is synced; one that cannot be opened is an error, not a silent success', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-fs-'));
  fsyncDir(dir);
  assert.throws(() => fsyncDir(join(dir, 'missing')), { code: 'ENOENT' });
});
