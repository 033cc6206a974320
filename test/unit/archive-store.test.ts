// The binlog archive's objects in a posix repository: a segment stored, then the file's index
// naming it; read back in order, checked and decrypted, into the file's bytes; a deleted object
// is named as missing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ARCHIVE_FORMAT, replayRuns, type FileIndex } from '../../src/archive/archive-index.js';
import { fetchRun, fileFolderKey, readShardArchive, storeSegment } from '../../src/archive/archive-store.js';
import type { ScannedRange } from '../../src/archive/binlog-scan.js';
import type { RepositoryConfig } from '../../src/config/repository.js';
import { PosixStore } from '../../src/repo/posix-store.js';
import { openRepository } from '../../src/repo/repository.js';

function config(keyFile?: string): RepositoryConfig {
  return {
    file: 'test.ini',
    store: { type: 'posix', path: '/unused' },
    prefix: 'c1',
    encryptionKeyFile: keyFile,
    encryptionOldKeyFiles: [],
    rateLimit: undefined,
    partSize: 64 * 1024 ** 2,
    retentionKeep: undefined,
    retentionDays: undefined,
  };
}

const range = (from: number, to: number, startGtid: string, endGtid: string): ScannedRange => ({
  from,
  to,
  startGtid,
  endGtid,
  firstGtid: '',
  lastGtid: '',
  firstTime: 1_700_000_000,
  lastTime: 1_700_000_001,
});

/** A new, open file index of server `serverId` on host:20000, no segment yet. */
const emptyIndex = (shard: number, host: string, serverId: number, file: string, fileStart: string): FileIndex => ({
  format: ARCHIVE_FORMAT,
  shard,
  host,
  port: 20000,
  serverId,
  file,
  fileStart,
  closed: false,
  segments: [],
});

for (const encrypted of [false, true]) {
  test(`archive store${encrypted ? ' (encrypted)' : ''}: segments and the index, read back into the file's bytes`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'sb-archive-'));
    try {
      let keyFile: string | undefined;
      if (encrypted) {
        keyFile = join(root, 'key');
        writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
      }
      const repo = await openRepository(config(keyFile), [], { store: new PosixStore(join(root, 'repo')) });
      const bytes = randomBytes(5000);
      let index = emptyIndex(3, '10.0.0.1', 11, 'mysql-bin.000004', '0-11-100');
      index = await storeSegment(repo, index, bytes.subarray(0, 3000), range(0, 3000, '0-11-100', '0-11-110'), false);
      index = await storeSegment(repo, index, bytes.subarray(3000), range(3000, 5000, '0-11-110', '0-11-120'), true);
      // The same segment again (a crash between object and index): replaced, not doubled.
      index = await storeSegment(repo, index, bytes.subarray(3000), range(3000, 5000, '0-11-110', '0-11-120'), true);
      assert.equal(index.segments.length, 2);

      const view = await readShardArchive(repo, 3);
      assert.deepEqual(view.problems, []);
      assert.equal(view.files.length, 1);
      const f = view.files[0]!;
      assert.equal(f.folder, fileFolderKey(repo, index));
      assert.equal(f.closed, true);
      assert.deepEqual(f.missing, []);
      assert.equal(f.segments[0]!.encrypted, encrypted);
      assert.equal(f.segments[0]!.firstEventTime, '2023-11-14T22:13:20.000Z');

      const r = replayRuns(view.files, '0-11-105', '0-11-118');
      assert.ok('runs' in r);
      const out = mkdtempSync(join(root, 'fetched-'));
      const path = await fetchRun(repo, r.runs[0]!, out);
      assert.deepEqual(readFileSync(path), bytes);

      rmSync(join(root, 'repo', `${f.folder}${f.segments[1]!.object}`));
      const after = await readShardArchive(repo, 3);
      assert.deepEqual(after.files[0]!.missing, ['000000003000.zst']);
      const g = replayRuns(after.files, '0-11-105', '0-11-118');
      assert.ok('gap' in g);
      assert.match(g.gap.reason, /000000003000\.zst is missing/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('archive store: a run of many segments is read back whole, with no listener piling up per segment', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-archive-'));
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const repo = await openRepository(config(), [], { store: new PosixStore(join(root, 'repo')) });
    const n = 25;
    const bytes = randomBytes(n * 700);
    let index = emptyIndex(1, '10.0.0.2', 12, 'mysql-bin.000009', '0-12-0');
    for (let i = 0; i < n; i++)
      index = await storeSegment(
        repo,
        index,
        bytes.subarray(i * 700, (i + 1) * 700),
        range(i * 700, (i + 1) * 700, `0-12-${i}`, `0-12-${i + 1}`),
        i === n - 1,
      );
    const view = await readShardArchive(repo, 1);
    const r = replayRuns(view.files, '0-12-0', `0-12-${n}`);
    assert.ok('runs' in r);
    assert.equal(r.runs[0]!.segments.length, n);
    const path = await fetchRun(repo, r.runs[0]!, mkdtempSync(join(root, 'fetched-')));
    assert.deepEqual(readFileSync(path), bytes);
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    rmSync(root, { recursive: true, force: true });
  }
});

test('archive store: a segment stored after the listing, named by an index read after it, is not missing', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-archive-'));
  try {
    const posix = new PosixStore(join(root, 'repo'));
    // A listing taken just before the archiver stored its newest segment (and then its index).
    let hide = '';
    const store: PosixStore = Object.assign(Object.create(posix) as PosixStore, {
      list: async (prefix: string) => (await posix.list(prefix)).filter((o) => hide === '' || !o.key.endsWith(hide)),
    });
    const repo = await openRepository(config(), [], { store });
    const bytes = randomBytes(2000);
    let index = emptyIndex(2, '10.0.0.3', 13, 'mysql-bin.000002', '0-13-0');
    index = await storeSegment(repo, index, bytes.subarray(0, 1000), range(0, 1000, '0-13-0', '0-13-5'), false);
    await storeSegment(repo, index, bytes.subarray(1000), range(1000, 2000, '0-13-5', '0-13-9'), false);
    hide = '000000001000.zst';
    const view = await readShardArchive(repo, 2);
    assert.deepEqual(view.files[0]!.missing, []);
    // Truly gone: missing, as before.
    rmSync(join(root, 'repo', `${view.files[0]!.folder}000000001000.zst`));
    assert.deepEqual((await readShardArchive(repo, 2)).files[0]!.missing, ['000000001000.zst']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
