// The binlog archiver's decisions (src/archive/archiver-rules.ts): the cut rule, where a stream
// starts (new archive, resume, next file, failover, purged file), the lag and the purge warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ArchivedFile, Segment } from '../../src/archive/archive-index.js';
import { segmentOf } from '../support/archive-fixtures.js';
import { archiveLagSeconds, chooseStart, CUT_BYTES, cutAgeOf, purgeRisk, shouldCut } from '../../src/archive/archiver-rules.js';

test('cut: whole transactions wait and the oldest is cut-age old, or 16 MiB wait, or the file is closed', () => {
  const now = 1_000_000;
  assert.equal(shouldCut({ bytes: 0, oldestMs: 0, closed: true }, now, 20_000), false, 'nothing to cut');
  assert.equal(shouldCut({ bytes: 100, oldestMs: now - 19_999, closed: false }, now, 20_000), false);
  assert.equal(shouldCut({ bytes: 100, oldestMs: now - 20_000, closed: false }, now, 20_000), true);
  assert.equal(shouldCut({ bytes: CUT_BYTES, oldestMs: now, closed: false }, now, 20_000), true);
  assert.equal(shouldCut({ bytes: 1, oldestMs: now, closed: true }, now, 20_000), true);
  assert.equal(cutAgeOf(60_000), 20_000);
  assert.equal(cutAgeOf(1000), 1000, 'never below a second');
});

const seg = (offset: number, length: number, endGtid: string): Segment => segmentOf(offset, length, '', endGtid, { sha256: '' });

const file = (host: string, port: number, name: string, fileStart: string, closed: boolean, segments: Segment[]): ArchivedFile => ({
  format: 1,
  shard: 1,
  host,
  port,
  serverId: port === 3306 ? 1 : 2,
  file: name,
  fileStart,
  closed,
  segments,
  folder: `c1/binlogs/shard-1/${host}_${port}/${name}~x/`,
  missing: [],
});

const A = { host: '10.0.0.1', port: 3306, serverId: 1 };
const B = { host: '10.0.0.2', port: 3306, serverId: 2 };

test('a new archive starts at the master current file', () => {
  const c = chooseStart([], A, [
    { name: 'mysql-bin.000001', start: '' },
    { name: 'mysql-bin.000002', start: '0-1-10' },
  ]);
  assert.equal(c.file, 'mysql-bin.000002');
  assert.equal(c.resume, undefined);
  assert.equal(c.gap, undefined);
});

test('this master resumes its newest file after the stored bytes, or takes the next one when it is closed', () => {
  const master = [
    { name: 'mysql-bin.000004', start: '0-1-10' },
    { name: 'mysql-bin.000005', start: '0-1-20' },
  ];
  const open = [file(A.host, A.port, 'mysql-bin.000004', '0-1-10', false, [seg(0, 500, '0-1-14'), seg(500, 300, '0-1-17')])];
  const c = chooseStart(open, A, master);
  assert.equal(c.file, 'mysql-bin.000004');
  assert.deepEqual([c.resume?.at, c.resume?.state, c.resume?.fileStart], [800, '0-1-17', '0-1-10']);

  const closed = [file(A.host, A.port, 'mysql-bin.000004', '0-1-10', true, [seg(0, 900, '0-1-20')])];
  const n = chooseStart(closed, A, master);
  assert.equal(n.file, 'mysql-bin.000005');
  assert.equal(n.resume, undefined);
  assert.equal(n.gap, undefined);
});

test('the file this master still needs was purged: a named gap, then its oldest file after it', () => {
  const archive = [file(A.host, A.port, 'mysql-bin.000004', '0-1-10', true, [seg(0, 900, '0-1-20')])];
  const c = chooseStart(archive, A, [
    { name: 'mysql-bin.000007', start: '0-1-40' },
    { name: 'mysql-bin.000008', start: '0-1-50' },
  ]);
  assert.equal(c.file, 'mysql-bin.000007');
  assert.match(
    c.gap ?? '',
    /the binlogs of 10\.0\.0\.1:3306 after mysql-bin\.000004 \(0-1-20\) up to mysql-bin\.000007 \(0-1-40\) are gone/,
  );
  // The open file it was in is gone.
  const open = [file(A.host, A.port, 'mysql-bin.000004', '0-1-10', false, [seg(0, 500, '0-1-14')])];
  const g = chooseStart(open, A, [{ name: 'mysql-bin.000007', start: '0-1-40' }]);
  assert.equal(g.file, 'mysql-bin.000007');
  assert.match(g.gap ?? '', /mysql-bin\.000004 of 10\.0\.0\.1:3306 is needed but the master no longer has it/);
});

test('failover: the new master starts at its latest file starting at or before the archive newest state', () => {
  const archive = [
    file(A.host, A.port, 'mysql-bin.000004', '0-1-10', true, [seg(0, 900, '0-1-20')]),
    file(A.host, A.port, 'mysql-bin.000005', '0-1-20', false, [seg(0, 400, '0-1-27')]),
  ];
  const replica = [
    { name: 'mysql-bin.000002', start: '0-1-5' },
    { name: 'mysql-bin.000003', start: '0-1-18' },
    { name: 'mysql-bin.000004', start: '0-1-30' },
  ];
  const c = chooseStart(archive, B, replica);
  assert.equal(c.file, 'mysql-bin.000003');
  assert.equal(c.resume, undefined);
  assert.equal(c.gap, undefined);
  // Every file of the new master starts after what the archive holds: the hole is named.
  const late = chooseStart(archive, B, [{ name: 'mysql-bin.000009', start: '0-1-40' }]);
  assert.equal(late.file, 'mysql-bin.000009');
  assert.match(late.gap ?? '', /purged before they were archived/);
});

test('failover back: a file of this master already archived in part is resumed, not stored again', () => {
  const archive = [
    file(A.host, A.port, 'mysql-bin.000005', '0-1-20', false, [seg(0, 400, '0-1-27')]),
    file(B.host, B.port, 'mysql-bin.000003', '0-1-18', false, [seg(0, 700, '0-2-35')]),
  ];
  const c = chooseStart(archive, A, [
    { name: 'mysql-bin.000005', start: '0-1-20' },
    { name: 'mysql-bin.000006', start: '0-2-40' },
  ]);
  assert.equal(c.file, 'mysql-bin.000005');
  assert.equal(c.resume?.at, 400);
});

test('lag: 0 when the archive holds the master position; else the oldest pending event; else since last caught up', () => {
  const base = { startedAtMs: 0, nowMs: 100_000 };
  assert.equal(archiveLagSeconds({ ...base, archived: '0-1-50', masterPos: '0-1-50', oldestPendingMs: 90_000, caughtUpAtMs: 1 }), 0);
  assert.equal(archiveLagSeconds({ ...base, archived: '0-1-40', masterPos: '0-1-50', oldestPendingMs: 90_000, caughtUpAtMs: 1 }), 10);
  assert.equal(
    archiveLagSeconds({ ...base, archived: '0-1-40', masterPos: '0-1-50', oldestPendingMs: undefined, caughtUpAtMs: 70_000 }),
    30,
  );
  assert.equal(archiveLagSeconds({ ...base, archived: '', masterPos: '0-1-50', oldestPendingMs: undefined, caughtUpAtMs: undefined }), 100);
  // Nothing pending: at most the time since the last archived event, when that is nearer than the last catch-up.
  assert.equal(
    archiveLagSeconds({
      ...base,
      archived: '0-1-40',
      masterPos: '0-1-50',
      oldestPendingMs: undefined,
      caughtUpAtMs: 70_000,
      lastArchivedEventMs: 95_000,
    }),
    5,
  );
});

test('purge warning: the needed file is the oldest and older than half the policy', () => {
  const now = 10_000_000;
  const i = { neededFile: 'mysql-bin.000003', oldestFile: 'mysql-bin.000003', fileOpenedMs: now - 3_600_000, policyS: 7200, nowMs: now };
  assert.match(purgeRisk(i) ?? '', /mysql-bin\.000003 is the master's oldest binlog/);
  assert.equal(purgeRisk({ ...i, policyS: 0 }), undefined, 'no policy');
  assert.equal(purgeRisk({ ...i, oldestFile: 'mysql-bin.000002' }), undefined, 'an older file goes first');
  assert.equal(purgeRisk({ ...i, fileOpenedMs: now - 1000 }), undefined, 'young');
});
