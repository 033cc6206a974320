import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ArchivedFile, Segment } from '../../src/archive/archive-index.js';
import { archiveReach } from '../../src/archive/archive-index.js';
import type { RestorePoint } from '../../src/cluster/restore-point-model.js';
import type { Manifest } from '../../src/runner/manifest.js';
import type { TaskRow } from '../../src/task/task.js';
import { archiveFiles, describeGap, splitReplay } from '../../src/restore/archive-plan.js';
import { segmentOf } from '../support/archive-fixtures.js';
import {
  candidatesFromManifests,
  candidatesFromTasks,
  choosePointAt,
  clockMicros,
  newestUsableBackup,
} from '../../src/restore/point-choice.js';

const pointAt = (name: string, takenAt: string, gtids = ['0-1-100', '1-2-100'], extra: Partial<RestorePoint> = {}): RestorePoint => ({
  name,
  takenAt,
  pauseMs: 1,
  acquireMs: 1,
  holdMs: 0,
  spiderNodes: 2,
  internalXa: true,
  complete: true,
  status: 'taken',
  shards: gtids.map((gtid, i) => ({ serverName: `SPT${i}`, shardValue: i, host: `h${i}`, port: 3306, gtid })),
  ...extra,
});

test('clockMicros: the clock restore-point --list shows, fractional seconds up to microseconds; anything else named', () => {
  assert.equal(clockMicros('2026-12-05 10:00:00') % 1_000_000, 0);
  assert.equal(clockMicros('2026-12-05 10:00:00.5') - clockMicros('2026-12-05 10:00:00'), 500_000);
  assert.equal(clockMicros('2026-12-05 10:00:00.000001') - clockMicros('2026-12-05 10:00:00'), 1);
  assert.equal(clockMicros('2026-12-05T10:00:01.123') - clockMicros('2026-12-05 10:00:00'), 1_123_000);
  for (const bad of [
    'yesterday',
    '2026-12-05',
    '2026-13-01 00:00:00',
    '2026-02-30 00:00:00',
    '2026-12-05 24:00:00',
    '2026-12-05 10:00:00Z',
    '2026-12-05 10:00:00.1234567',
  ])
    assert.throws(
      () => clockMicros(bad),
      (err: Error) => err.name === 'UsageError' && err.message.includes(JSON.stringify(bad)),
      bad,
    );
});

test('choosePointAt: the newest taken, complete point at or before the time, and how far before', () => {
  const points = [
    pointAt('a', '2026-12-05 10:00:00.100'),
    pointAt('b', '2026-12-05 10:00:05.000'),
    pointAt('c', '2026-12-05 10:00:09.000'),
    pointAt('half', '2026-12-05 10:00:08.000', undefined, { complete: false }),
    pointAt('none', '2026-12-05 10:00:08.500', undefined, { status: 'opted-out' }),
    pointAt('late', '2026-12-05 10:00:20.000'),
  ];
  const at = choosePointAt(points, '2026-12-05 10:00:09.5');
  assert.equal(at.point.name, 'c');
  assert.equal(at.beforeMs, 500);
  assert.equal(choosePointAt(points, '2026-12-05 10:00:05').beforeMs, 0, 'a point exactly at the time');
  assert.equal(choosePointAt(points, '2026-12-05 10:00:08.9').point.name, 'b', 'incomplete and opted-out points are passed over');
  assert.throws(
    () => choosePointAt(points, '2026-12-05 09:00:00'),
    /"2026-12-05 09:00:00": no restore point at or before it \(the oldest is a, taken 2026-12-05 10:00:00.100\)/,
  );
  assert.throws(() => choosePointAt([], '2026-12-05 09:00:00'), /none is recorded/);
});

const task = (backupId: string, wrapper: string, shardValue: number, status: string, createdAt: string, updatedAt: string): TaskRow => ({
  backupId,
  host: `h${shardValue}`,
  port: wrapper === 'mysql' ? 3306 : 3307,
  shardValue,
  serverName: `SPT${shardValue}`,
  wrapper,
  status,
  taskPid: -1,
  createdAt,
  updatedAt,
  createdAgeS: 0,
  updatedAgeS: 0,
});

test('newestUsableBackup over task rows: every shard needs a successful backup (master or replica) that ended before the point', () => {
  const p = pointAt('p', '2026-12-05 12:00:00.000');
  const tasks = [
    // newest: ended after the point
    task('b3', 'mysql', 0, 'success', '2026-12-05 11:50:00', '2026-12-05 12:00:01'),
    task('b3', 'mysql', 1, 'success', '2026-12-05 11:50:00', '2026-12-05 11:55:00'),
    // shard 1's master failed, its replica succeeded: usable
    task('b2', 'mysql', 0, 'success', '2026-12-05 11:00:00', '2026-12-05 11:10:00'),
    task('b2', 'mysql', 1, 'failed', '2026-12-05 11:00:00', '2026-12-05 11:10:00'),
    task('b2', 'mysql_slave', 1, 'success', '2026-12-05 11:00:00', '2026-12-05 11:10:00'),
    task('b1', 'mysql', 0, 'success', '2026-12-05 10:00:00', '2026-12-05 10:10:00'),
    task('b1', 'mysql', 1, 'success', '2026-12-05 10:00:00', '2026-12-05 10:10:00'),
  ];
  assert.equal(newestUsableBackup(p, candidatesFromTasks(p, tasks)), 'b2');
  // With a repository: b2's replica is not complete there.
  assert.equal(
    newestUsableBackup(
      p,
      candidatesFromTasks(p, tasks, (t) => !(t.backupId === 'b2' && t.port === 3307)),
    ),
    'b1',
  );
  // A shard with nothing usable anywhere: none.
  assert.equal(
    newestUsableBackup(
      p,
      candidatesFromTasks(
        p,
        tasks.filter((t) => t.shardValue === 0),
      ),
    ),
    undefined,
  );
});

const manifest = (shardValue: number, role: string, gtid: string): Manifest =>
  ({ shardValue, role, position: role === 'master' ? { gtid } : {}, masterPosition: role === 'slave' ? { gtid } : undefined }) as Manifest;

test('newestUsableBackup over manifests (no cluster): the point must cover each backup position', () => {
  const p = pointAt('p', '2026-12-05 12:00:00.000', ['0-1-100', '1-2-100']);
  const backups = [
    { backupId: 'b3', manifests: [manifest(0, 'master', '0-1-120'), manifest(1, 'master', '1-2-90')] },
    { backupId: 'b2', manifests: [manifest(0, 'master', '0-1-80'), manifest(1, 'slave', '1-2-100'), manifest(9, 'spider', '')] },
    { backupId: 'b1', manifests: [manifest(0, 'master', '0-1-10'), manifest(1, 'master', '1-2-10')] },
  ];
  assert.equal(newestUsableBackup(p, candidatesFromManifests(p, backups)), 'b2');
});

// Synthetic archive: each file's segments as [endGtid, missing?]; a segment holds its own seq range.
function file(name: string, fileStart: string, ends: (string | [string, 'missing'])[], host = 'h0'): ArchivedFile {
  let offset = 0;
  let start = fileStart;
  const segments: Segment[] = [];
  const missing: string[] = [];
  for (const e of ends) {
    const [end, gone] = Array.isArray(e) ? e : [e, undefined];
    const object = `${String(offset).padStart(12, '0')}.zst`;
    segments.push(segmentOf(offset, 100, start, end, { storedBytes: 50 }));
    if (gone) missing.push(object);
    offset += 100;
    start = end;
  }
  return {
    format: 1,
    shard: 0,
    host,
    port: 3306,
    serverId: 1,
    file: name,
    fileStart,
    closed: true,
    segments,
    folder: `p/binlogs/shard-0/${host}_3306/${name}~t/`,
    missing,
  };
}

test('splitReplay: all from the archive when it reaches the point; the runs start at the backup and stop at the first segment reaching it', () => {
  const files = [file('b.1', '0-1-0', ['0-1-10', '0-1-20']), file('b.2', '0-1-20', ['0-1-30', '0-1-40', '0-1-50'])];
  const s = splitReplay(files, '0-1-5', '0-1-35');
  assert.equal(s.restFrom, undefined);
  assert.deepEqual(
    s.runs.map((r) => [r.file.file, r.segments.length, r.startGtid]),
    [
      ['b.1', 2, '0-1-5'],
      ['b.2', 2, '0-1-20'],
    ],
  );
  assert.deepEqual(
    archiveFiles(s.runs).map((f) => [f.source, f.file, f.segments, f.bytes]),
    [
      ['archive', 'b.1', 2, 200],
      ['archive', 'b.2', 2, 200],
    ],
  );
  assert.deepEqual(splitReplay(files, '0-1-35', '0-1-35'), { runs: [] }, 'nothing to replay');
});

test('splitReplay: the archive short of the point: its runs, then the master from its end', () => {
  const files = [file('b.1', '0-1-0', ['0-1-10', '0-1-20'])];
  const s = splitReplay(files, '0-1-5', '0-1-35');
  assert.equal(s.runs.length, 1);
  assert.equal(s.restFrom, '0-1-20');
  assert.match(s.gap?.reason ?? '', /the archive ends at 0-1-20/);
  assert.deepEqual(splitReplay([], '0-1-5', '0-1-35'), { runs: [], restFrom: '0-1-5' }, 'no archive: all from the master');
});

test('splitReplay: a missing object is a hole: the runs up to it, the master from there, the object named', () => {
  const files = [
    file('b.1', '0-1-0', ['0-1-10', '0-1-20']),
    file('b.2', '0-1-20', ['0-1-30', ['0-1-40', 'missing'], '0-1-50']),
    file('b.3', '0-1-50', ['0-1-60']),
  ];
  const s = splitReplay(files, '0-1-5', '0-1-55');
  assert.deepEqual(
    s.runs.map((r) => [r.file.file, r.segments.length]),
    [
      ['b.1', 2],
      ['b.2', 1],
    ],
  );
  assert.equal(s.restFrom, '0-1-30');
  assert.equal(s.gap?.before, '0-1-50');
  assert.match(
    describeGap(s.gap!),
    /^GAP after 0-1-30 up to 0-1-50: b\.2 of h0:3306: p\/binlogs\/shard-0\/h0_3306\/b\.2~t\/000000000100\.zst is missing$/,
  );
  // A point before the hole is reached from the archive alone.
  assert.equal(splitReplay(files, '0-1-5', '0-1-28').restFrom, undefined);
  // A file purged before it was archived.
  const purged = splitReplay([files[0]!, files[2]!], '0-1-5', '0-1-55');
  assert.equal(purged.restFrom, '0-1-20');
  assert.match(purged.gap?.reason ?? '', /no archived binlog holds the events after 0-1-20 up to 0-1-50/);
});

test('archiveReach: the newest state and every hole', () => {
  const files = [
    file('b.1', '0-1-0', ['0-1-10', '0-1-20']),
    file('b.2', '0-1-20', ['0-1-30', ['0-1-40', 'missing'], '0-1-50']),
    file('b.3', '0-1-50', ['0-1-60']),
  ];
  const r = archiveReach(files);
  assert.equal(r.newest, '0-1-60');
  assert.deepEqual(
    r.gaps.map((g) => [g.after, g.before]),
    [['0-1-30', '0-1-50']],
  );
  assert.deepEqual(
    archiveReach([files[0]!, files[2]!]).gaps.map((g) => [g.after, g.before]),
    [['0-1-20', '0-1-50']],
  );
  assert.deepEqual(archiveReach([files[0]!]).gaps, []);
});
